// Package nodeapi is the contract between racklift and the machines it
// installs: every URL a node fetches or posts to, the callback phases and
// how a callback carries its token, and the JSON documents that cross the
// wire (callback bodies, the deploy agent's instructions, the facts an
// installed node reports for verification).
//
// It is a leaf package: the renderer writes these URLs into a node's
// files, the boot HTTP server routes them, the deploy agent and the tests
// call them, and all of them use only the builders below, so they cannot
// disagree. Paths are relative to the node-facing server URL (e.g.
// http://10.99.0.1:8080). {mac} is the node's PXE MAC in lower-case colon
// form, as in the plan.
package nodeapi

import (
	"net/url"
	"strings"
)

// Routes of the node-facing HTTP server, in chi pattern syntax.
const (
	// PathHealthz reports that the server is up (no secrets).
	PathHealthz = "/healthz"
	// PathIPXE is the node's iPXE script (boot.ipxe, or the local-boot
	// script once installed). It never holds a secret: anyone can ask for
	// any MAC.
	PathIPXE = "/ipxe/{mac}/boot.ipxe"
	// PathGRUB is the node's GRUB config on the Secure Boot chain (shim ->
	// signed GRUB -> this file), the counterpart of PathIPXE. No secrets.
	PathGRUB = "/grub/{mac}/grub.cfg"
	// PathKickstart is the node's kickstart (ks.cfg). Holds secrets: only
	// served to the node (see the README's security section).
	PathKickstart = "/ks/{mac}"
	// PathSeed is the node's NoCloud seed directory; it holds user-data,
	// meta-data, vendor-data and network-config. For kickstart nodes
	// user-data is the first-boot cloud-config the installed system seeds
	// itself with. Holds secrets: only served to the node.
	PathSeed = "/ci/{mac}/"
	// PathSeedFile is one file of PathSeed.
	PathSeedFile = "/ci/{mac}/{file}"
	// PathMedia is the root of an OS media's files ({media} is the
	// profile's media name); PathMediaISO is the whole ISO image.
	PathMedia    = "/media/{media}/"
	PathMediaISO = "/media/{media}.iso"
	// PathIPXEBin serves the iPXE binaries for UEFI HTTP boot.
	PathIPXEBin = "/ipxe-bin/{file}"
	// PathPhoneHome is where installers, the deploy agent and the first
	// boot report progress: POST, token in the TokenHeader header (or, for
	// Subiquity's webhook reporter, which cannot set headers, in the
	// TokenQuery query parameter; the server must accept both), optional
	// JSON body CallbackBody, or Subiquity's own webhook event JSON.
	PathPhoneHome = "/phone-home/{mac}/{phase}"

	// PathAgentKernel and PathAgentInitrd are racklift's deploy agent (a
	// Debian kernel and an initramfs holding the racklift binary). Public:
	// they hold no secret.
	PathAgentKernel = "/agent/vmlinuz"
	PathAgentInitrd = "/agent/initrd.img"
	// PathAgentInstructions is the agent's Instructions (JSON). Holds the
	// node's token and seed: only served to the node, which the server
	// recognises by its address (the agent sends no token: it gets its
	// token from here). The agent retries 403 and 404 with backoff for
	// up to 5 minutes.
	PathAgentInstructions = "/agent/{mac}/instructions"
	// PathImageManifest is an imported OS image's manifest (JSON). Public.
	PathImageManifest = "/images/{image}/manifest.json"
	// PathBlob is one content-addressed blob of an image (a compressed
	// chunk), named by the SHA-256 of its bytes. Public.
	PathBlob = "/blobs/{sha256}"
	// PathFactsScript is the Python script an installed node runs at first
	// boot to report its Facts with the ready callback. Public.
	PathFactsScript = "/lib/racklift-facts.py"
)

// Callback protocol.
const (
	// TokenHeader carries the node's token on callbacks. The deploy
	// agent has no token until it has its instructions (its kernel
	// arguments carry no secret), so the instructions are served by the
	// node's address, not by token (PathAgentInstructions).
	TokenHeader = "X-Racklift-Token"
	// TokenQuery carries the token where no header can be set (the
	// Subiquity webhook reporter, PhaseInstaller).
	TokenQuery = "token"
)

// Phases the rendered files and the agent post to PathPhoneHome, in order.
const (
	// PhasePre: the installer started (kickstart %pre, autoinstall
	// early-commands), before any disk is touched. Body percent 5.
	PhasePre = "pre"
	// PhaseProgress: free-form install progress (the kernel is running,
	// the agent writes the image: body percent, bytes, rate).
	PhaseProgress = "progress"
	// PhaseInstaller: Subiquity's webhook reporter events (token in the query).
	PhaseInstaller = "installer"
	// PhasePost: packages are installed (or the image is written),
	// post-install configuration runs.
	PhasePost = "post"
	// PhaseInstalled: the install finished; the node reboots into its disk.
	PhaseInstalled = "installed"
	// PhaseFirstBoot: the installed system's cloud-init started.
	PhaseFirstBoot = "first-boot"
	// PhaseReady: first boot finished; the body carries the node's Facts.
	PhaseReady = "ready"
	// PhaseError: the installer failed (kickstart %onerror, autoinstall
	// error-commands, the agent).
	PhaseError = "error"
)

// File names of a node's rendered files (the last element of their URL).
const (
	FileIPXE          = "boot.ipxe"
	FileGRUB          = "grub.cfg"
	FileKickstart     = "ks.cfg"
	FileUserData      = "user-data"
	FileMetaData      = "meta-data"
	FileVendorData    = "vendor-data"
	FileNetworkConfig = "network-config"
	FileInstructions  = "instructions"
)

func join(server string, parts ...string) string {
	var b strings.Builder
	b.WriteString(strings.TrimRight(server, "/"))
	for _, p := range parts {
		b.WriteString(p)
	}
	return b.String()
}

// IPXEURL returns {server}/ipxe/{mac}/boot.ipxe.
func IPXEURL(server, mac string) string { return join(server, "/ipxe/", mac, "/boot.ipxe") }

// GRUBURL returns {server}/grub/{mac}/grub.cfg.
func GRUBURL(server, mac string) string { return join(server, "/grub/", mac, "/grub.cfg") }

// KickstartURL returns {server}/ks/{mac}.
func KickstartURL(server, mac string) string { return join(server, "/ks/", mac) }

// SeedDirURL returns the NoCloud seed directory {server}/ci/{mac}/ (with
// the trailing slash NoCloud needs).
func SeedDirURL(server, mac string) string { return join(server, "/ci/", mac, "/") }

// SeedURL returns {server}/ci/{mac}/{file}; file is FileUserData,
// FileMetaData, FileVendorData or FileNetworkConfig.
func SeedURL(server, mac, file string) string { return join(server, "/ci/", mac, "/", file) }

// MediaURL returns {server}/media/{media} (no trailing slash).
func MediaURL(server, media string) string { return join(server, "/media/", media) }

// MediaISOURL returns {server}/media/{media}.iso.
func MediaISOURL(server, media string) string { return join(server, "/media/", media, ".iso") }

// PhoneHomeURL returns {server}/phone-home/{mac}/{phase}; send the token in
// the TokenHeader header.
func PhoneHomeURL(server, mac, phase string) string {
	return join(server, "/phone-home/", mac, "/", phase)
}

// PhoneHomeTokenURL returns PhoneHomeURL with ?token=TOKEN, for senders
// that cannot set a header (Subiquity's webhook reporter).
func PhoneHomeTokenURL(server, mac, phase, token string) string {
	return PhoneHomeURL(server, mac, phase) + "?" + TokenQuery + "=" + url.QueryEscape(token)
}

// AgentKernelURL returns {server}/agent/vmlinuz.
func AgentKernelURL(server string) string { return join(server, PathAgentKernel) }

// AgentInitrdURL returns {server}/agent/initrd.img.
func AgentInitrdURL(server string) string { return join(server, PathAgentInitrd) }

// AgentInstructionsURL returns {server}/agent/{mac}/instructions.
func AgentInstructionsURL(server, mac string) string {
	return join(server, "/agent/", mac, "/instructions")
}

// ImageManifestURL returns {server}/images/{image}/manifest.json.
func ImageManifestURL(server, image string) string {
	return join(server, "/images/", image, "/manifest.json")
}

// BlobURL returns {server}/blobs/{sha256}.
func BlobURL(server, sha256 string) string { return join(server, "/blobs/", sha256) }

// FactsScriptURL returns {server}/lib/racklift-facts.py.
func FactsScriptURL(server string) string { return join(server, PathFactsScript) }

// Boot is what a node is told when it asks for its boot script (the
// orchestrator decides; the boot server serves the matching script).
type Boot int

// Boot decisions.
const (
	// BootInstall boots the node's installer (or deploy agent).
	BootInstall Boot = iota
	// BootLocal boots the local disk: the node is installed (the reinstall
	// guard; only the operator's reinstall changes it).
	BootLocal
	// BootHold boots nothing: the node's install failed and waits for the
	// operator's retry; the script says so and exits to the next boot
	// device.
	BootHold
)

func (b Boot) String() string {
	switch b {
	case BootInstall:
		return "install"
	case BootLocal:
		return "local"
	case BootHold:
		return "hold"
	}
	return "unknown"
}

// Access is what a client asks for on behalf of a node, for the
// orchestrator's Admit decision.
type Access int

// Accesses.
const (
	// AccessConfig is a file that holds the node's secrets (kickstart,
	// seed, agent instructions).
	AccessConfig Access = iota
	// AccessCallback is a progress callback (it may move the node).
	AccessCallback
	// AccessMedia is a media fetch that would move the node's timeline
	// (its kernel or initrd).
	AccessMedia
)

func (a Access) String() string {
	switch a {
	case AccessConfig:
		return "config"
	case AccessCallback:
		return "callback"
	case AccessMedia:
		return "media"
	}
	return "unknown"
}
