package events

import (
	"encoding/base64"
	"strings"
	"sync"
	"testing"
)

func TestTokenLifecycle(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	tok, err := s.Token(ctx, "cs-controller-01")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(raw) != 32 {
		t.Fatalf("token is not 32 bytes of base64url (len %d, err %v)", len(raw), err)
	}
	if again, err := s.Token(ctx, "cs-controller-01"); err != nil || again != tok {
		t.Errorf("second Token call returned a different token (err %v)", err)
	}
	other, err := s.Token(ctx, "cs-controller-02")
	if err != nil || other == tok {
		t.Errorf("two nodes share a token (err %v)", err)
	}

	lookups := map[string]struct {
		token    string
		wantNode string
		wantOK   bool
	}{
		"node 1":          {tok, "cs-controller-01", true},
		"node 2":          {other, "cs-controller-02", true},
		"unknown":         {strings.Repeat("A", len(tok)), "", false},
		"malformed":       {"not a token", "", false},
		"empty":           {"", "", false},
		"bad base64":      {strings.Repeat("*", len(tok)), "", false},
		"prefix of valid": {tok[:len(tok)-1], "", false},
	}
	for name, tc := range lookups {
		t.Run(name, func(t *testing.T) {
			node, ok, err := s.NodeForToken(ctx, tc.token)
			if err != nil || ok != tc.wantOK || node != tc.wantNode {
				t.Errorf("NodeForToken = %q, %v, %v; want %q, %v", node, ok, err, tc.wantNode, tc.wantOK)
			}
		})
	}

	rot, err := s.RotateToken(ctx, "cs-controller-01")
	if err != nil || rot == tok {
		t.Fatalf("RotateToken: same token or %v", err)
	}
	if _, ok, _ := s.NodeForToken(ctx, tok); ok {
		t.Error("old token still valid after rotation")
	}
	if node, ok, err := s.NodeForToken(ctx, rot); err != nil || !ok || node != "cs-controller-01" {
		t.Errorf("rotated token: %q, %v, %v", node, ok, err)
	}
	if cur, err := s.Token(ctx, "cs-controller-01"); err != nil || cur != rot {
		t.Errorf("Token after rotation is not the rotated one (err %v)", err)
	}
	if fresh, err := s.RotateToken(ctx, "new-node"); err != nil || !wellFormed(fresh) {
		t.Errorf("RotateToken of a node without token: %v", err)
	}
	if _, err := s.Token(ctx, ""); err == nil {
		t.Error("Token(\"\") succeeded")
	}
	if _, err := s.RotateToken(ctx, ""); err == nil {
		t.Error("RotateToken(\"\") succeeded")
	}
}

func TestTokenConcurrentFirstUse(t *testing.T) {
	s := newStore(t)
	const callers = 16
	toks := make([]string, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() { toks[i], errs[i] = s.Token(t.Context(), "n") })
	}
	wg.Wait()
	for i := range callers {
		if errs[i] != nil || toks[i] != toks[0] {
			t.Fatalf("caller %d: differing token or error %v", i, errs[i])
		}
	}
}
