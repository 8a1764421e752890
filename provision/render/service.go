package render

import (
	"context"
	"fmt"

	"github.com/racklift/racklift/provision/plan"
)

// Service renders a site's node files with what is not in the plan: the
// node's current callback token, the root password hash, the extra SSH
// keys and the image store's part of the agent's instructions. The boot
// server serves its NodeFile to the node; the dashboard shows ReviewFile,
// the same file with the secrets replaced by placeholders, so a page never
// holds them. It is what `racklift serve` wires between the renderer, the
// event store (tokens), the secrets and the image store.
type Service struct {
	Plan      *plan.Plan
	Renderer  *Renderer
	ServerURL string
	// Tokens gives the node's current callback token.
	Tokens interface {
		Token(ctx context.Context, node string) (string, error)
	}
	// Secrets resolves the root password hash.
	Secrets interface {
		Lookup(name string) (string, bool)
	}
	// SSHKeys are root's keys besides the plan's (the deployment key).
	SSHKeys []string
	// Images gives an image node's ImageEnv (nil: image nodes are not served).
	Images func(image string) (ImageEnv, error)
}

// Placeholders ReviewFile shows instead of secrets.
const (
	MaskedToken = "hidden-by-racklift"
	MaskedHash  = "$6$hidden$hidden-by-racklift"
)

// NodeFile renders the real file name of node n, secrets included.
func (s *Service) NodeFile(ctx context.Context, n *plan.Node, name string) ([]byte, error) {
	tok, err := s.Tokens.Token(ctx, n.Name)
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	env := Env{ServerURL: s.ServerURL, Token: tok, SSHKeys: s.SSHKeys}
	if rh := s.Plan.Cluster.RootPasswordSecret; rh != "" && s.Secrets != nil {
		env.RootHash, _ = s.Secrets.Lookup(rh)
	}
	if env.Image, err = s.image(n); err != nil {
		return nil, err
	}
	return s.Renderer.File(s.Plan, n, name, env)
}

// ReviewFile renders file name of node n for people: token and root hash
// replaced by MaskedToken and MaskedHash.
func (s *Service) ReviewFile(_ context.Context, n *plan.Node, name string) ([]byte, error) {
	env := Env{ServerURL: s.ServerURL, Token: MaskedToken, SSHKeys: s.SSHKeys}
	if s.Plan.Cluster.RootPasswordSecret != "" {
		env.RootHash = MaskedHash
	}
	var err error
	if env.Image, err = s.image(n); err != nil {
		return nil, err
	}
	return s.Renderer.File(s.Plan, n, name, env)
}

func (s *Service) image(n *plan.Node) (ImageEnv, error) {
	prof, err := s.Renderer.Profile(n)
	if err != nil || prof.Image == "" || s.Images == nil {
		return ImageEnv{}, nil
	}
	env, err := s.Images(prof.Image)
	if err != nil {
		return ImageEnv{}, fmt.Errorf("node %s: image %s: %w", n.Name, prof.Image, err)
	}
	return env, nil
}

// FileNames lists node n's files (none for an unknown profile).
func (s *Service) FileNames(n *plan.Node) []string {
	names, _ := s.Renderer.FileNames(n)
	return names
}

// LocalBootScript, HoldScript, UnknownScript and BootFiles are the
// renderer's, for the boot server.
func (s *Service) LocalBootScript(n *plan.Node) []byte { return s.Renderer.LocalBoot(n) }
func (s *Service) HoldScript(n *plan.Node) []byte      { return s.Renderer.Hold(n) }
func (s *Service) UnknownScript(mac string) []byte     { return s.Renderer.UnknownMAC(mac) }
func (s *Service) BootFiles(n *plan.Node) (string, []string) {
	return s.Renderer.BootFiles(n)
}
