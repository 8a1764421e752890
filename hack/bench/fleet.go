package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

// PXE options a BIOS PXE ROM sends, and what iPXE adds once it runs.
func pxeMods(ipxe bool) []dhcpv4.Modifier {
	m := []dhcpv4.Modifier{
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00000:UNDI:002001")),
		dhcpv4.WithOption(dhcpv4.OptClientArch(iana.INTEL_X86PC)),
		dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionClientNetworkInterfaceIdentifier, []byte{1, 2, 1})),
		dhcpv4.WithRequestedOptions(dhcpv4.OptionTFTPServerName, dhcpv4.OptionBootfileName),
	}
	if ipxe {
		m = append(m, dhcpv4.WithUserClass("iPXE", false),
			dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.GenericOptionCode(175), []byte{0x13, 1, 1})))
	}
	return m
}

var (
	reToken = regexp.MustCompile(`X-Racklift-Token: ([A-Za-z0-9_.=~+/-]+)`)
	reURL   = regexp.MustCompile(`https?://[^\s'"]+`)
	reKS    = regexp.MustCompile(`inst\.ks=(\S+)`)
)

// nodeResult is one simulated node's outcome and step times.
type nodeResult struct {
	err   error
	steps [7]time.Duration // dhcp1, tftp, dhcp2, script, kernel+initrd, ks, callbacks
	total time.Duration
	bytes int64
}

var stepNames = []string{"DHCP (PXE ROM)", "TFTP undionly.kpxe", "DHCP (iPXE)", "boot.ipxe", "kernel+initrd", "ks.cfg", "callbacks pre+installed"}

// simNode walks node i through a whole network install at protocol level.
func simNode(ctx context.Context, dc *dhcpClient, i int) (r nodeResult) {
	t0 := time.Now()
	mark := func(k int, since *time.Time) { r.steps[k] = time.Since(*since); *since = time.Now() }
	defer func() { r.total = time.Since(t0) }()
	mac := benchMAC(i)
	st := time.Now()
	d := dc.dora(ctx, mac, pxeMods(false)...)
	if d.err != nil {
		r.err = fmt.Errorf("dhcp1: %w", d.err)
		return
	}
	mark(0, &st)
	ip := d.ack.YourIPAddr
	if d.ack.BootFileName == "" {
		r.err = errors.New("dhcp1: no boot file")
		return
	}
	n, err := tftpFetch(net.JoinHostPort(d.ack.ServerIPAddr.String(), "69"), d.ack.BootFileName)
	if err != nil {
		r.err = fmt.Errorf("tftp %s: %w", d.ack.BootFileName, err)
		return
	}
	r.bytes += n
	mark(1, &st)
	d = dc.dora(ctx, mac, pxeMods(true)...)
	if d.err != nil {
		r.err = fmt.Errorf("dhcp2: %w", d.err)
		return
	}
	mark(2, &st)
	script := d.ack.BootFileName
	if !strings.HasPrefix(script, "http") {
		r.err = fmt.Errorf("dhcp2: boot file %q is not a URL", script)
		return
	}
	// Every later request comes from the node's own leased address (put
	// on the client veth beforehand), as a real node's would.
	hc := &http.Client{Timeout: 120 * time.Second, Transport: &http.Transport{
		DialContext:       (&net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 10 * time.Second}).DialContext,
		DisableKeepAlives: false, MaxIdleConnsPerHost: 2,
	}}
	defer hc.CloseIdleConnections()
	body, err := get(ctx, hc, script, nil)
	if err != nil {
		r.err = fmt.Errorf("script: %w", err)
		return
	}
	mark(3, &st)
	var kernel string
	var initrds []string
	ks := ""
	for _, line := range strings.Split(string(body), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "kernel":
			kernel = reURL.FindString(line)
			if m := reKS.FindStringSubmatch(line); m != nil {
				ks = m[1]
			}
		case "initrd":
			initrds = append(initrds, reURL.FindString(line))
		}
	}
	if kernel == "" || len(initrds) == 0 || ks == "" {
		r.err = fmt.Errorf("script lacks kernel/initrd/inst.ks: %q", body)
		return
	}
	for _, u := range append([]string{kernel}, initrds...) {
		n, err := getDiscard(ctx, hc, u)
		if err != nil {
			r.err = fmt.Errorf("get %s: %w", u, err)
			return
		}
		r.bytes += n
	}
	mark(4, &st)
	cfg, err := get(ctx, hc, ks, nil)
	if err != nil {
		r.err = fmt.Errorf("ks: %w", err)
		return
	}
	mark(5, &st)
	// The token and the callback URLs come from the kickstart itself, as
	// the installer's racklift_report function uses them.
	tm := reToken.FindSubmatch(cfg)
	if tm == nil {
		r.err = errors.New("ks: no X-Racklift-Token")
		return
	}
	var pre, installed string
	for _, u := range reURL.FindAllString(string(cfg), -1) {
		switch {
		case strings.Contains(u, "/phone-home/") && strings.HasSuffix(u, "/pre"):
			pre = u
		case strings.Contains(u, "/phone-home/") && strings.HasSuffix(u, "/installed"):
			installed = u
		}
	}
	if pre == "" || installed == "" {
		r.err = errors.New("ks: no phone-home URLs")
		return
	}
	for _, c := range []struct{ u, body string }{
		{pre, `{"percent":5,"detail":"installer started"}`},
		{installed, `{"percent":100,"detail":"installed"}`},
	} {
		if _, err := post(ctx, hc, c.u, string(tm[1]), c.body); err != nil {
			r.err = fmt.Errorf("callback %s: %w", c.u, err)
			return
		}
	}
	mark(6, &st)
	return
}

func get(ctx context.Context, hc *http.Client, u string, _ http.Header) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %s", resp.Status)
	}
	return b, err
}

func getDiscard(ctx context.Context, hc *http.Client, u string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("status %s", resp.Status)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
		err = fmt.Errorf("short body %d/%d", n, resp.ContentLength)
	}
	return n, err
}

func post(ctx context.Context, hc *http.Client, u, token, body string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewBufferString(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("X-Racklift-Token", token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("status %s", resp.Status)
	}
	return resp.StatusCode, nil
}

type fleetResult struct {
	Nodes     int                `json:"nodes"`
	Done      int                `json:"done"`
	WallSec   float64            `json:"wall_s"`
	P50s      float64            `json:"node_p50_s"`
	MaxS      float64            `json:"node_max_s"`
	GB        float64            `json:"gbytes"`
	StepP50   map[string]float64 `json:"step_p50_s"`
	FirstErrs []string           `json:"first_errors,omitempty"`
}

// cmdFleet powers on n nodes at once.
func cmdFleet(args []string) error {
	fs := flag.NewFlagSet("fleet-client", flag.ExitOnError)
	n := fs.Int("n", 512, "nodes")
	limit := fs.Duration("limit", 300*time.Second, "overall limit")
	_ = fs.Parse(args)

	dc, err := newDHCPClient(clientIf)
	if err != nil {
		return err
	}
	defer dc.close()
	ctx, cancel := context.WithTimeout(context.Background(), *limit)
	defer cancel()
	res := make([]nodeResult, *n)
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := range *n {
		wg.Add(1)
		go func() { defer wg.Done(); res[i] = simNode(ctx, dc, i) }()
	}
	wg.Wait()
	out := fleetResult{Nodes: *n, WallSec: time.Since(t0).Seconds(), StepP50: map[string]float64{}}
	var tot []time.Duration
	steps := make([][]time.Duration, len(stepNames))
	for _, r := range res {
		out.GB += float64(r.bytes) / 1e9
		if r.err != nil {
			if len(out.FirstErrs) < 5 {
				out.FirstErrs = append(out.FirstErrs, r.err.Error())
			}
			continue
		}
		out.Done++
		tot = append(tot, r.total)
		for k := range stepNames {
			steps[k] = append(steps[k], r.steps[k])
		}
	}
	slices.Sort(tot)
	out.P50s = pct(tot, 50).Seconds()
	if len(tot) > 0 {
		out.MaxS = tot[len(tot)-1].Seconds()
	}
	for k, name := range stepNames {
		slices.Sort(steps[k])
		out.StepP50[name] = pct(steps[k], 50).Seconds()
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}

// cmdGet fetches one URL from the client namespace (used to bind the
// benchmark client's address to a node before the HTTP benchmark, so
// racklift's media handler does its event accounting).
func cmdGet(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: get URL")
	}
	b, err := get(context.Background(), &http.Client{Timeout: 10 * time.Second}, args[0], nil)
	if err != nil {
		return err
	}
	_, _ = os.Stdout.Write(b)
	return nil
}
