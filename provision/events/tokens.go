package events

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
)

// tokenBytes is the entropy of a callback token.
const tokenBytes = 32

// Callback tokens authenticate a node's installer when it calls back
// (phone-home, progress). They are secrets: they are stored in the 0600
// database, looked up by their SHA-256 (so the lookup's timing reveals
// nothing about the token) and compared in constant time, and never logged.

// Token returns node's callback token, creating and persisting a new one
// (32 random bytes, unpadded base64url) on first use. Concurrent first
// calls for one node all get the same token.
func (s *Store) Token(ctx context.Context, node string) (string, error) {
	if s.closed() {
		return "", ErrClosed
	}
	if node == "" {
		return "", errors.New("token: empty node name")
	}
	var tok string
	err := s.rdb.QueryRowContext(ctx, `SELECT token FROM tokens WHERE node = ?`, node).Scan(&tok)
	switch {
	case err == nil:
		return tok, nil
	case !errors.Is(err, sql.ErrNoRows):
		return "", fmt.Errorf("token for %q: %w", node, err)
	}
	return s.createToken(ctx, node)
}

// createToken inserts a token for node unless one appeared meanwhile, and
// returns the stored one.
func (s *Store) createToken(ctx context.Context, node string) (string, error) {
	if err := s.writable(); err != nil {
		return "", err
	}
	fresh, err := newToken()
	if err != nil {
		return "", fmt.Errorf("token for %q: %w", node, err)
	}
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return "", fmt.Errorf("token for %q: begin: %w", node, err)
	}
	defer func() { _ = tx.Rollback() }()
	_, err = tx.ExecContext(ctx, `INSERT INTO tokens (node, token, token_hash, created) VALUES (?, ?, ?, ?)
		ON CONFLICT (node) DO NOTHING`, node, fresh, tokenHash(fresh), toNanos(s.now()))
	if err != nil {
		return "", fmt.Errorf("token for %q: insert: %w", node, err)
	}
	var tok string
	if err := tx.QueryRowContext(ctx, `SELECT token FROM tokens WHERE node = ?`, node).Scan(&tok); err != nil {
		return "", fmt.Errorf("token for %q: %w", node, err)
	}
	if err := tx.Commit(); err != nil {
		return "", fmt.Errorf("token for %q: commit: %w", node, err)
	}
	if tok == fresh {
		s.log.Info("callback token created", "node", node)
	}
	return tok, nil
}

// RotateToken replaces node's token with a new one (creating it if there was
// none) and returns it; the old token stops working at once.
func (s *Store) RotateToken(ctx context.Context, node string) (string, error) {
	if err := s.writable(); err != nil {
		return "", err
	}
	if node == "" {
		return "", errors.New("rotate token: empty node name")
	}
	tok, err := newToken()
	if err != nil {
		return "", fmt.Errorf("rotate token for %q: %w", node, err)
	}
	_, err = s.wdb.ExecContext(ctx, `INSERT INTO tokens (node, token, token_hash, created) VALUES (?, ?, ?, ?)
		ON CONFLICT (node) DO UPDATE SET token = excluded.token, token_hash = excluded.token_hash,
			created = excluded.created`, node, tok, tokenHash(tok), toNanos(s.now()))
	if err != nil {
		return "", fmt.Errorf("rotate token for %q: %w", node, err)
	}
	s.log.Info("callback token rotated", "node", node)
	return tok, nil
}

// NodeForToken returns the node owning token. ok is false for an unknown or
// malformed token (not an error: the caller answers 401/403).
func (s *Store) NodeForToken(ctx context.Context, token string) (node string, ok bool, err error) {
	if s.closed() {
		return "", false, ErrClosed
	}
	if !wellFormed(token) {
		return "", false, nil
	}
	var stored string
	err = s.rdb.QueryRowContext(ctx, `SELECT node, token FROM tokens WHERE token_hash = ?`, tokenHash(token)).
		Scan(&node, &stored)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("look up token: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(stored), []byte(token)) != 1 {
		return "", false, nil
	}
	return node, true, nil
}

// newToken returns a fresh random token.
func newToken() (string, error) {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// tokenHash is the lookup key stored beside a token.
func tokenHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// wellFormed reports whether token has the shape newToken produces.
func wellFormed(token string) bool {
	if len(token) != base64.RawURLEncoding.EncodedLen(tokenBytes) {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(token)
	return err == nil
}
