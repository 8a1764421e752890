package handoff

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// DeployKey is the site's deployment SSH key: Ansible (kolla-ansible) and
// cephadm log in to every node with it as root.
type DeployKey struct {
	// Public is the authorized_keys line, "ssh-ed25519 AAAA... racklift-deploy@CLUSTER".
	Public string
	// Private is the OpenSSH private key file (unencrypted), 0600.
	Private []byte
}

// deployKeyName is the key's file name under STATE/ssh/.
const deployKeyName = "id_ed25519"

// LoadOrCreateDeployKey returns the deployment key of the state dir,
// creating it (ed25519, STATE/ssh/id_ed25519 0600 in a 0700 directory) the
// first time. Concurrent callers get the same key: the file is created
// with a hard link, which fails if another process made it first.
// comment ends the public key line (e.g. "racklift-deploy@hci").
func LoadOrCreateDeployKey(stateDir, comment string) (DeployKey, error) {
	dir := filepath.Join(stateDir, "ssh")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return DeployKey{}, fmt.Errorf("deployment key: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return DeployKey{}, fmt.Errorf("deployment key: %w", err)
	}
	path := filepath.Join(dir, deployKeyName)
	if k, err := loadDeployKey(path); err == nil || !errors.Is(err, os.ErrNotExist) {
		return k, err
	}
	priv, err := newDeployKey(rand.Reader, comment)
	if err != nil {
		return DeployKey{}, err
	}
	tmp, err := os.CreateTemp(dir, ".id_ed25519-*")
	if err != nil {
		return DeployKey{}, fmt.Errorf("deployment key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(priv); err != nil {
		tmp.Close()
		return DeployKey{}, fmt.Errorf("deployment key: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return DeployKey{}, fmt.Errorf("deployment key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return DeployKey{}, fmt.Errorf("deployment key: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, os.ErrExist) {
		return DeployKey{}, fmt.Errorf("deployment key: %w", err)
	}
	k, err := loadDeployKey(path)
	if err != nil {
		return DeployKey{}, err
	}
	// The .pub file is for people and ssh-copy-id; the private key is the truth.
	if err := os.WriteFile(path+".pub", []byte(k.Public+"\n"), 0o644); err != nil {
		return DeployKey{}, fmt.Errorf("deployment key: %w", err)
	}
	return k, nil
}

// DeployPublicKey returns the authorized_keys line of the state dir's
// deployment key (creating the key the first time). racklift puts it into
// every node's first-boot cloud-config, next to the plan's ssh_keys.
func DeployPublicKey(stateDir, comment string) (string, error) {
	k, err := LoadOrCreateDeployKey(stateDir, comment)
	return k.Public, err
}

func loadDeployKey(path string) (DeployKey, error) {
	st, err := os.Stat(path)
	if err != nil {
		return DeployKey{}, fmt.Errorf("deployment key: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return DeployKey{}, fmt.Errorf("deployment key %s is readable by group or others (mode %o): chmod 600 it", path, st.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return DeployKey{}, fmt.Errorf("deployment key: %w", err)
	}
	pub, comment, err := parseOpenSSHEd25519(data)
	if err != nil {
		return DeployKey{}, fmt.Errorf("deployment key %s: %w", path, err)
	}
	return DeployKey{Public: authorizedKey(pub, comment), Private: data}, nil
}

// sshString appends an SSH wire-format string (RFC 4251 section 5).
func sshString(b *bytes.Buffer, s []byte) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(s)))
	b.Write(n[:])
	b.Write(s)
}

func ed25519Blob(pub ed25519.PublicKey) []byte {
	var b bytes.Buffer
	sshString(&b, []byte("ssh-ed25519"))
	sshString(&b, pub)
	return b.Bytes()
}

// authorizedKey formats an authorized_keys line (RFC 4253 section 6.6 key
// blob, base64, then the comment).
func authorizedKey(pub ed25519.PublicKey, comment string) string {
	s := "ssh-ed25519 " + base64.StdEncoding.EncodeToString(ed25519Blob(pub))
	if comment != "" {
		s += " " + comment
	}
	return s
}

const opensshMagic = "openssh-key-v1\x00"

// newDeployKey makes an ed25519 key in OpenSSH's private key format
// (PROTOCOL.key of OpenSSH: magic, cipher "none", kdf "none", one public
// key, and the private section padded to the 8-byte block size).
func newDeployKey(rnd io.Reader, comment string) ([]byte, error) {
	pub, priv, err := ed25519.GenerateKey(rnd)
	if err != nil {
		return nil, fmt.Errorf("deployment key: %w", err)
	}
	var check [4]byte
	if _, err := io.ReadFull(rnd, check[:]); err != nil {
		return nil, fmt.Errorf("deployment key: %w", err)
	}
	var sec bytes.Buffer
	sec.Write(check[:])
	sec.Write(check[:])
	sshString(&sec, []byte("ssh-ed25519"))
	sshString(&sec, pub)
	sshString(&sec, priv) // seed || public key, 64 bytes
	sshString(&sec, []byte(comment))
	for i := byte(1); sec.Len()%8 != 0; i++ {
		sec.WriteByte(i)
	}
	var b bytes.Buffer
	b.WriteString(opensshMagic)
	sshString(&b, []byte("none"))
	sshString(&b, []byte("none"))
	sshString(&b, nil)
	b.Write([]byte{0, 0, 0, 1})
	sshString(&b, ed25519Blob(pub))
	sshString(&b, sec.Bytes())
	return pem.EncodeToMemory(&pem.Block{Type: "OPENSSH PRIVATE KEY", Bytes: b.Bytes()}), nil
}

// parseOpenSSHEd25519 reads an unencrypted OpenSSH ed25519 private key
// and returns its public key and comment, checking that the private part
// matches the public one.
func parseOpenSSHEd25519(data []byte) (ed25519.PublicKey, string, error) {
	blk, _ := pem.Decode(data)
	if blk == nil || blk.Type != "OPENSSH PRIVATE KEY" {
		return nil, "", errors.New("not an OpenSSH private key")
	}
	r := &wire{b: blk.Bytes}
	if string(r.take(len(opensshMagic))) != opensshMagic {
		return nil, "", errors.New("not an openssh-key-v1 key")
	}
	if c, k := string(r.str()), string(r.str()); c != "none" || k != "none" {
		return nil, "", errors.New("encrypted keys are not supported")
	}
	r.str() // kdf options
	if n := r.u32(); n != 1 {
		return nil, "", fmt.Errorf("%d keys in the file, want 1", n)
	}
	r.str() // public key blob, repeated in the private section
	sec := &wire{b: r.str()}
	if r.err != nil {
		return nil, "", r.err
	}
	if c1, c2 := sec.u32(), sec.u32(); c1 != c2 {
		return nil, "", errors.New("check bytes differ (corrupt or encrypted)")
	}
	if string(sec.str()) != "ssh-ed25519" {
		return nil, "", errors.New("not an ed25519 key")
	}
	pub := ed25519.PublicKey(sec.str())
	priv := ed25519.PrivateKey(sec.str())
	comment := string(sec.str())
	if sec.err != nil {
		return nil, "", sec.err
	}
	if len(pub) != ed25519.PublicKeySize || len(priv) != ed25519.PrivateKeySize || !bytes.Equal(priv.Public().(ed25519.PublicKey), pub) {
		return nil, "", errors.New("private and public key do not match")
	}
	return pub, comment, nil
}

// wire reads SSH wire-format values, remembering the first error.
type wire struct {
	b   []byte
	err error
}

func (w *wire) take(n int) []byte {
	if w.err != nil || n < 0 || n > len(w.b) {
		if w.err == nil {
			w.err = errors.New("truncated key")
		}
		return nil
	}
	v := w.b[:n]
	w.b = w.b[n:]
	return v
}

func (w *wire) u32() uint32 {
	v := w.take(4)
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint32(v)
}

func (w *wire) str() []byte { return w.take(int(w.u32())) }
