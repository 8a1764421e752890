package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

// stat is the median and range of one metric over runs.
type stat struct{ med, lo, hi float64 }

func (bb *b) stat(key, metric string) (stat, int, bool) {
	var v []float64
	for _, m := range bb.results[key] {
		if x, ok := m[metric]; ok {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return stat{}, 0, false
	}
	slices.Sort(v)
	med := v[len(v)/2]
	if len(v)%2 == 0 {
		med = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return stat{med, v[0], v[len(v)-1]}, len(v), true
}

func (bb *b) sum(key, metric string) float64 {
	t := 0.0
	for _, m := range bb.results[key] {
		t += m[metric]
	}
	return t
}

func (s stat) f(prec int) string {
	return fmt.Sprintf("%.*f (%.*f–%.*f)", prec, s.med, prec, s.lo, prec, s.hi)
}

func ratio(a, b stat, ok bool) string {
	if !ok || b.med == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a.med/b.med)
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return "?"
}

func memTotal() string {
	b, _ := os.ReadFile("/proc/meminfo")
	var kb int64
	for _, l := range strings.Split(string(b), "\n") {
		if _, err := fmt.Sscanf(l, "MemTotal: %d kB", &kb); err == nil {
			return fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
		}
	}
	return "?"
}

func gitDescribe() string {
	out, err := exec.Command("git", "describe", "--tags", "--always", "--dirty").Output()
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(out))
}

// report renders the results as markdown.
func (bb *b) report(started time.Time) string {
	var w strings.Builder
	goVer, _ := exec.Command("go", "env", "GOVERSION").Output()
	fmt.Fprintf(&w, "### Run of %s\n\n", started.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&w, "- Machine: %d CPUs (%s), %s RAM, kernel %s, shared with other jobs\n", runtime.NumCPU(), cpuModel(), memTotal(), strings.TrimSpace(versionOf("uname", "-r")))
	fmt.Fprintf(&w, "- racklift %s; Go %s; kea-dhcp4-server %s; dnsmasq %s; tftpd-hpa %s; nginx-light %s; wrk %s\n",
		gitDescribe(), strings.TrimSpace(string(goVer)), dpkgVersion("kea-dhcp4-server"), dpkgVersion("dnsmasq-base"),
		dpkgVersion("tftpd-hpa"), dpkgVersion("nginx-light"), dpkgVersion("wrk"))
	var loads []float64
	for _, rs := range bb.results {
		for _, m := range rs {
			loads = append(loads, m["load1"])
		}
	}
	if len(loads) > 0 {
		slices.Sort(loads)
		fmt.Fprintf(&w, "- 1-min load average at the end of each run: median %.2f, range %.2f–%.2f\n", loads[len(loads)/2], loads[0], loads[len(loads)-1])
	}
	fmt.Fprintf(&w, "- Median (min–max) over %d runs per server, servers alternated; fleet over %d runs\n\n", bb.runs, bb.fleetRuns)

	if _, _, ok := bb.stat("dhcp512|kea", "rate"); ok || len(bb.results["dhcp512|racklift"]) > 0 {
		fmt.Fprintf(&w, "#### DHCP: full DORA, 64 in flight\n\n")
		fmt.Fprintf(&w, "| clients | server | DORA/s | p50 ms | p99 ms | NAKs (all runs) | never ACKed (all runs) | retransmits (all runs) | server CPU s | DORA/s vs Kea | p99 vs Kea |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, n := range []int{512, 2048} {
			kr, _, kok := bb.stat(fmt.Sprintf("dhcp%d|kea", n), "rate")
			kp, _, _ := bb.stat(fmt.Sprintf("dhcp%d|kea", n), "p99")
			for _, s := range []string{"racklift", "kea", "dnsmasq"} {
				key := fmt.Sprintf("dhcp%d|%s", n, s)
				rate, runs, ok := bb.stat(key, "rate")
				if !ok {
					continue
				}
				p50, _, _ := bb.stat(key, "p50")
				p99, _, _ := bb.stat(key, "p99")
				cpu, _, _ := bb.stat(key, "cpu")
				fmt.Fprintf(&w, "| %d | %s (%d runs) | %s | %s | %s | %.0f | %.0f | %.0f | %s | %s | %s |\n", n, s, runs, rate.f(0), p50.f(2), p99.f(2),
					bb.sum(key, "naks"), bb.sum(key, "never"), bb.sum(key, "retx"), cpu.f(2), ratio(rate, kr, kok), ratio(p99, kp, kok))
			}
		}
		w.WriteString("\n")
	}
	if _, _, ok := bb.stat("tftp|dnsmasq", "wall"); ok || len(bb.results["tftp|racklift"]) > 0 {
		fmt.Fprintf(&w, "#### TFTP storm: 512 clients at once, 1 MiB, blksize 1468, 1 s timeout × 5 attempts\n\n")
		fmt.Fprintf(&w, "| server | completed (worst run) | wall s | client p50 s | server CPU s | load generator CPU s | wall vs dnsmasq |\n|---|---|---|---|---|---|---|\n")
		dw, _, dok := bb.stat("tftp|dnsmasq", "wall")
		for _, s := range []string{"racklift", "dnsmasq", "tftpd-hpa"} {
			key := "tftp|" + s
			wall, runs, ok := bb.stat(key, "wall")
			if !ok {
				continue
			}
			done, _, _ := bb.stat(key, "done")
			p50, _, _ := bb.stat(key, "p50")
			cpu, _, _ := bb.stat(key, "cpu")
			ccpu, _, _ := bb.stat(key, "ccpu")
			cpus := cpu.f(1)
			if s == "tftpd-hpa" {
				cpus = "n/a (forked children)"
			}
			fmt.Fprintf(&w, "| %s (%d runs) | %.0f/512 | %s | %s | %s | %s | %s |\n", s, runs, done.lo, wall.f(2), p50.f(2), cpus, ccpu.f(1), ratio(wall, dw, dok))
		}
		w.WriteString("\n")
	}
	if _, _, ok := bb.stat("http1|nginx", "gbps"); ok || len(bb.results["http1|racklift"]) > 0 {
		fmt.Fprintf(&w, "#### HTTP: 64 MiB media file, wrk 6 s\n\n")
		fmt.Fprintf(&w, "| connections | server | GB/s | server CPU s per 6 s | vs nginx |\n|---|---|---|---|---|\n")
		for _, c := range []int{1, 64} {
			ng, _, nok := bb.stat(fmt.Sprintf("http%d|nginx", c), "gbps")
			for _, s := range []string{"racklift", "nginx"} {
				g, runs, ok := bb.stat(fmt.Sprintf("http%d|%s", c, s), "gbps")
				if !ok {
					continue
				}
				cpu, _, _ := bb.stat(fmt.Sprintf("http%d|%s", c, s), "cpu")
				fmt.Fprintf(&w, "| %d | %s (%d runs) | %s | %s | %s |\n", c, s, runs, g.f(2), cpu.f(2), ratio(g, ng, nok))
			}
		}
		w.WriteString("\n")
	}
	if _, runs, ok := bb.stat("fleet|racklift", "wall"); ok {
		key := "fleet|racklift"
		g := func(m string, p int) string { s, _, _ := bb.stat(key, m); return s.f(p) }
		done, _, _ := bb.stat(key, "done")
		fmt.Fprintf(&w, "#### Fleet: 512 nodes powered on at once against one racklift (%d runs)\n\n", runs)
		fmt.Fprintf(&w, "DHCP (PXE ROM) → TFTP undionly.kpxe → DHCP (iPXE) → boot.ipxe → 10 MiB kernel + 60 MiB initrd → ks.cfg → callbacks pre + installed (token from ks.cfg)\n\n")
		fmt.Fprintf(&w, "| nodes done (worst run) | end-to-end s | node p50 s | node max s | server CPU s | server peak RSS MiB | GB sent |\n|---|---|---|---|---|---|---|\n")
		fmt.Fprintf(&w, "| %.0f/512 | %s | %s | %s | %s | %s | %s |\n\n", done.lo, g("wall", 1), g("p50", 1), g("max", 1), g("cpu", 1), g("rss", 0), g("gb", 1))
		fmt.Fprintf(&w, "Per-step median time per node (s):")
		for k, name := range stepNames {
			s, _, _ := bb.stat(key, fmt.Sprintf("step%d", k))
			fmt.Fprintf(&w, " %s %.2f;", name, s.med)
		}
		w.WriteString("\n\n")
	}
	if len(bb.errs) > 0 {
		fmt.Fprintf(&w, "Errors: %s\n", strings.Join(bb.errs, "; "))
	}
	return w.String()
}
