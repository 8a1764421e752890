package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/racklift/racklift/profiles"
	"github.com/racklift/racklift/provision/agent/bundle"
	"github.com/racklift/racklift/provision/image"
	"github.com/racklift/racklift/provision/plan"
	"github.com/racklift/racklift/provision/render"
)

// imageSet tells the plan loader which image an image profile deploys
// and how large each imported image is (plan.ImageSet).
type imageSet struct {
	profs *profiles.Set
	store *image.Store
}

func (s imageSet) ProfileImage(profile string) string {
	if p, ok := s.profs.Get(profile); ok && p.Installer == profiles.InstallerImage {
		return p.Image
	}
	return ""
}

func (s imageSet) ImageSize(name string) (int64, bool) {
	m, _, err := s.store.Manifest(name)
	if err != nil {
		return 0, false
	}
	return m.Size, true
}

// imageEnv is what render needs of the store for an image node's
// instructions: the manifest's SHA-256 and where blobs are served.
func imageEnv(store *image.Store, serverURL string) func(string) (render.ImageEnv, error) {
	return func(name string) (render.ImageEnv, error) {
		_, raw, err := store.Manifest(name)
		if err != nil {
			return render.ImageEnv{}, err
		}
		sum := sha256.Sum256(raw)
		return render.ImageEnv{ManifestSHA256: hex.EncodeToString(sum[:]), BlobURLs: []string{serverURL}}, nil
	}
}

// needsAgent reports whether the plan has nodes that boot racklift's deploy
// agent or the Secure Boot chain (both come from the agent directory).
func needsAgent(p *plan.Plan, profs *profiles.Set) (images, secureBoot bool) {
	for _, n := range p.Nodes {
		if pr, ok := profs.Get(n.Profile); ok && pr.Installer == profiles.InstallerImage {
			images = true
		}
		if n.BIOS.SecureBoot {
			secureBoot = true
		}
	}
	return images, secureBoot
}

// agentDirs are where serve looks for the agent directory when
// --agent-dir is not given: the USB live image's, then the state dir's.
func agentDirs(stateDir string) []string {
	return []string{"/usr/lib/racklift/agent", filepath.Join(stateDir, "agent")}
}

// loadAgent loads the agent directory (--agent-dir, else the first of
// agentDirs that has one).
func loadAgent(dir, stateDir string) (*bundle.Bundle, error) {
	if dir == "" {
		for _, d := range agentDirs(stateDir) {
			if _, err := os.Stat(filepath.Join(d, bundle.FileInfo)); err == nil {
				dir = d
				break
			}
		}
	}
	if dir == "" {
		return nil, fmt.Errorf("the plan has image or Secure Boot nodes, which boot racklift's deploy agent or Debian's signed chain, "+
			"and no agent directory was found in %v: build it with `make agent` and pass --agent-dir out/agent: %w", agentDirs(stateDir), fs.ErrNotExist)
	}
	b, err := bundle.Load(dir, "")
	if err != nil {
		return nil, fmt.Errorf("agent directory: %w", err)
	}
	return b, nil
}
