package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/racklift/racklift/profiles"
	"github.com/racklift/racklift/provision/nodeapi"
	"github.com/racklift/racklift/provision/plan"
	"github.com/racklift/racklift/provision/render"
	"github.com/racklift/racklift/templates"
)

// planRender implements `racklift plan render FILE -o DIR`: every node's
// install files, written for review before the visit.
func planRender(ctx context.Context, args []string, e *env) int {
	fs := newFlags("plan render", e)
	var pf planFlags
	pf.register(fs)
	out := fs.String("o", "", "output directory (created, mode 0700)")
	serverURL := fs.String("server-url", "", "racklift's HTTP URL as the nodes reach it on the provisioning network, e.g. http://10.99.0.1:8080 (required)")
	pos, code, ok := parseFlags(fs, args, e)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		fmt.Fprint(e.stderr, "racklift plan render: want exactly one plan FILE\n\n"+planUsage)
		return exitUsage
	}
	if *out == "" {
		fmt.Fprint(e.stderr, "racklift plan render: -o DIR is required\n\n"+planUsage)
		return exitUsage
	}
	if *serverURL == "" {
		// The plan does not say where racklift runs: the laptop's address on
		// the provisioning network is only known on site.
		fmt.Fprint(e.stderr, "racklift plan render: --server-url is required: the URL the nodes reach racklift at on the provisioning network, e.g. http://10.99.0.1:8080 (the address 'racklift serve' listens on)\n")
		return exitUsage
	}
	if err := render.CheckServerURL(*serverURL); err != nil {
		fmt.Fprintf(e.stderr, "racklift plan render: --server-url: %v\n", err)
		return exitUsage
	}
	p, ds, profs, secrets, code, ok := pf.load(ctx, pos[0], e)
	if !ok {
		return code
	}
	_ = ds.WriteText(e.stderr)
	if p == nil {
		fmt.Fprintf(e.stderr, "racklift plan render: %s is not usable; nothing rendered\n", pos[0])
		return exitFailed
	}
	rootHash, _ := secrets.Lookup(p.Cluster.RootPasswordSecret)
	if rootHash == "" {
		fmt.Fprintf(e.stderr, "racklift plan render: warning: root password secret %q is not available (pass --secrets FILE): root password locked, SSH keys only\n", p.Cluster.RootPasswordSecret)
	}
	n, files, err := writeRender(*out, p, profs, render.Env{ServerURL: *serverURL, RootHash: rootHash})
	if err != nil {
		fmt.Fprintf(e.stderr, "racklift plan render: %v\n", err)
		return exitRuntime
	}
	fmt.Fprintf(e.stdout, "rendered %d nodes (%d files) into %s; read %s first\n", n, files, *out, filepath.Join(*out, "index.txt"))
	return exitOK
}

// indexRow is one node of index.txt.
type indexRow struct {
	node, mac, profile, installer, addr string
	files                               []string
}

// writeRender renders every node into dir/<node>/ and writes dir/index.txt.
// base supplies ServerURL and RootHash; each node gets a fresh random token.
func writeRender(dir string, p *plan.Plan, profs *profiles.Set, base render.Env) (nodes, files int, err error) {
	r, err := render.New(templates.FS(), profs)
	if err != nil {
		return 0, 0, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, 0, fmt.Errorf("create output directory: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return 0, 0, fmt.Errorf("output directory: %w", err)
	}
	var rows []indexRow
	for _, n := range p.Nodes {
		env := base
		if env.Token, err = newToken(); err != nil {
			return 0, 0, err
		}
		fs, err := r.Files(p, n, env)
		if err != nil {
			return 0, 0, fmt.Errorf("render: %w", err)
		}
		nd := filepath.Join(dir, n.Name)
		if err := os.MkdirAll(nd, 0o700); err != nil {
			return 0, 0, fmt.Errorf("create %s: %w", nd, err)
		}
		row := indexRow{node: n.Name, mac: n.MAC, profile: n.Profile, addr: "-"}
		if prof, err := r.Profile(n); err == nil {
			row.installer = prof.Installer
		}
		if a, ok := n.Provisioning(); ok {
			row.addr = a.Addr.String()
		}
		for _, f := range fs {
			// Every file carries the node's callback token and some the
			// root hash: owner-only, like the secrets file.
			if err := writeFile0600(filepath.Join(nd, f.Name), f.Data); err != nil {
				return 0, 0, err
			}
			row.files = append(row.files, f.Name)
			files++
		}
		rows = append(rows, row)
	}
	if err := writeIndex(filepath.Join(dir, "index.txt"), p, base, rows); err != nil {
		return 0, 0, err
	}
	return len(rows), files + 1, nil
}

// newToken returns 32 random bytes as unpadded base64url.
func newToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func writeFile0600(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(0o600); err != nil { // an existing file keeps its mode otherwise
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// writeIndex writes the engineer's overview of a render.
func writeIndex(path string, p *plan.Plan, base render.Env, rows []indexRow) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write index: %w", err)
	}
	w := bufio.NewWriter(f)
	writeIndexText(w, p, base, rows)
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("write index: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write index: %w", err)
	}
	return nil
}

func writeIndexText(w io.Writer, p *plan.Plan, base render.Env, rows []indexRow) {
	server := strings.TrimRight(base.ServerURL, "/")
	fmt.Fprintf(w, "racklift render of plan %q (%s): %d nodes\n\n", p.Cluster.Name, p.File, len(rows))
	fmt.Fprintf(w, "Server URL: %s\n", server)
	if base.RootHash != "" {
		fmt.Fprintf(w, "Root password: crypt hash from secret %q (in ks.cfg / autoinstall user-data)\n", p.Cluster.RootPasswordSecret)
	} else {
		fmt.Fprintf(w, "Root password: LOCKED (secret %q not given): root logs in with the plan's SSH keys only\n", p.Cluster.RootPasswordSecret)
	}
	fmt.Fprint(w, `Callback tokens: random per node for this review copy only. A serving
racklift issues and checks its own tokens, so these files are for review and
are not what a node will fetch byte for byte (only the token differs).
BMC passwords are never rendered.

Per node (DIR/<node>/):
  boot.ipxe    iPXE script: installer kernel, initrd and kernel arguments
  ks.cfg       kickstart (RHEL 9 family)                  served at `+nodeapi.PathKickstart+`
  user-data    kickstart nodes: first-boot cloud-config (hostname, /etc/hosts,
               chrony, ready callback), fetched into the installed system;
               autoinstall nodes: #cloud-config with autoinstall: (the first
               boot is its autoinstall.user-data)          served at `+nodeapi.PathSeed+`user-data
  meta-data    NoCloud meta-data (instance-id, hostname)    served at `+nodeapi.PathSeed+`meta-data
  vendor-data  NoCloud vendor-data (autoinstall only)       served at `+nodeapi.PathSeed+`vendor-data
  grub.cfg     Secure Boot nodes: the signed GRUB's config (shim, GRUB, the
               agent; no iPXE)                               served at `+nodeapi.PathGRUB+`
  instructions image nodes: what the deploy agent does (image, OS disk,
               OSDs to keep or wipe, the seed it writes)     served at `+nodeapi.PathAgentInstructions+`
  network-config image nodes: NoCloud network-config v2 (bonds, VLANs,
               MTU, routes), written into the seed by the agent
Progress: POST `+nodeapi.PathPhoneHome+` with header `+nodeapi.TokenHeader+`
(Subiquity's webhook reporter: ?`+nodeapi.TokenQuery+`=...).

`)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tPXE MAC\tPXE ADDRESS\tPROFILE\tINSTALLER\tFILES\tBOOT SCRIPT URL")
	for _, r := range rows {
		url := nodeapi.IPXEURL(server, r.mac)
		if slices.Contains(r.files, "grub.cfg") { // Secure Boot: shim and GRUB, never iPXE
			url = nodeapi.GRUBURL(server, r.mac)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.node, r.mac, r.addr, r.profile, r.installer, strings.Join(r.files, " "), url)
	}
	_ = tw.Flush()
}
