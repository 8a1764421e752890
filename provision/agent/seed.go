package agent

import (
	"errors"
	"fmt"
	"os"
	"path"

	"github.com/racklift/racklift/provision/nodeapi"
)

// SeedDir is where cloud-init's NoCloud datasource finds a seed in the
// installed root file system (cloud-init's seed_dir for NoCloud; its
// ds-identify finds it there without any kernel argument).
const SeedDir = "var/lib/cloud/seed/nocloud"

// WriteSeed writes the NoCloud seed into the root file system mounted at
// rootDir: user-data, meta-data and (when not empty) network-config, mode
// 0600 (they hold the root password hash), each synced. Paths are
// resolved inside rootDir (os.Root), so a symlink in the image cannot
// send the seed elsewhere. It returns the files written, relative to
// rootDir.
func WriteSeed(rootDir string, s nodeapi.Seed) ([]string, error) {
	r, err := os.OpenRoot(rootDir)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if err := r.MkdirAll(SeedDir, 0o755); err != nil {
		return nil, fmt.Errorf("create /%s: %w", SeedDir, err)
	}
	files := []struct {
		name, data string
	}{
		{nodeapi.FileUserData, s.UserData},
		{nodeapi.FileMetaData, s.MetaData},
		{nodeapi.FileNetworkConfig, s.NetworkConfig},
	}
	var written []string
	for _, f := range files {
		p := path.Join(SeedDir, f.name)
		if f.data == "" && f.name == nodeapi.FileNetworkConfig {
			// No network-config: cloud-init falls back to DHCP on the
			// first NIC. Remove one the image may carry.
			if err := r.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				return written, fmt.Errorf("remove /%s: %w", p, err)
			}
			continue
		}
		fh, err := r.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return written, fmt.Errorf("write /%s: %w", p, err)
		}
		_, err = fh.WriteString(f.data)
		if err == nil {
			err = fh.Chmod(0o600)
		}
		if err == nil {
			err = fh.Sync()
		}
		if cerr := fh.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return written, fmt.Errorf("write /%s: %w", p, err)
		}
		written = append(written, p)
	}
	if d, err := r.Open(SeedDir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return written, nil
}
