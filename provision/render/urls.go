package render

import (
	"net/url"
	"strings"
)

// The URL layout racklift's HTTP boot server serves, relative to the server
// URL (Env.ServerURL, e.g. http://10.99.0.1:8080). {mac} is the node's PXE
// MAC in lower-case colon form (as in the plan). Rendered files only use the
// builders below, so the server and the files cannot disagree.
const (
	// PathIPXE is the node's iPXE script (boot.ipxe, or the local-boot
	// script once installed).
	PathIPXE = "/ipxe/{mac}/boot.ipxe"
	// PathKickstart is the node's kickstart (ks.cfg).
	PathKickstart = "/ks/{mac}"
	// PathSeed is the node's NoCloud seed directory; it holds user-data,
	// meta-data and vendor-data. For kickstart nodes user-data is the
	// first-boot cloud-config the installed system seeds itself with.
	PathSeed = "/ci/{mac}/"
	// PathMedia is the root of an OS media's files ({media} is the
	// profile's media name); PathMediaISO is the whole ISO image.
	PathMedia    = "/media/{media}/"
	PathMediaISO = "/media/{media}.iso"
	// PathPhoneHome is where installers and the first boot report
	// progress: POST, token in the TokenHeader header (or, for Subiquity's
	// webhook reporter, which cannot set headers, in the TokenQuery query
	// parameter; the server must accept both), optional JSON body
	// CallbackBody, or Subiquity's own webhook event JSON.
	PathPhoneHome = "/phone-home/{mac}/{phase}"
)

// Callback protocol.
const (
	// TokenHeader carries the node's token on callbacks.
	TokenHeader = "X-Racklift-Token"
	// TokenQuery carries the token where no header can be set (the
	// Subiquity webhook reporter, PhaseInstaller).
	TokenQuery = "token"
)

// Phases the rendered files post to PathPhoneHome, in order.
const (
	// PhasePre: the installer started (kickstart %pre, autoinstall
	// early-commands), before any disk is touched. Body percent 5.
	PhasePre = "pre"
	// PhaseProgress: the kernel/initrd is running (kernel command line
	// variable ProgressURL); free-form progress.
	PhaseProgress = "progress"
	// PhaseInstaller: Subiquity's webhook reporter events (token in the query).
	PhaseInstaller = "installer"
	// PhasePost: packages are installed, post-install configuration runs.
	PhasePost = "post"
	// PhaseInstalled: the install finished; the node reboots into its disk.
	PhaseInstalled = "installed"
	// PhaseFirstBoot: the installed system's cloud-init started its final stage.
	PhaseFirstBoot = "first-boot"
	// PhaseReady: first boot finished (hostname, /etc/hosts, chrony set).
	PhaseReady = "ready"
	// PhaseError: the installer failed (kickstart %onerror, autoinstall
	// error-commands).
	PhaseError = "error"
)

// CallbackBody is the optional JSON body racklift's own callbacks send.
type CallbackBody struct {
	// Percent is the install progress 0-100, when known.
	Percent *int `json:"percent,omitempty"`
	// Detail is a short human-readable message.
	Detail string `json:"detail,omitempty"`
}

// File names of a node's rendered files (the last element of their URL).
const (
	FileIPXE       = "boot.ipxe"
	FileKickstart  = "ks.cfg"
	FileUserData   = "user-data"
	FileMetaData   = "meta-data"
	FileVendorData = "vendor-data"
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

// KickstartURL returns {server}/ks/{mac}.
func KickstartURL(server, mac string) string { return join(server, "/ks/", mac) }

// SeedDirURL returns the NoCloud seed directory {server}/ci/{mac}/ (with
// the trailing slash NoCloud needs).
func SeedDirURL(server, mac string) string { return join(server, "/ci/", mac, "/") }

// SeedURL returns {server}/ci/{mac}/{file}; file is FileUserData,
// FileMetaData or FileVendorData.
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
// that cannot set a header (Subiquity's webhook reporter, kernel arguments).
func PhoneHomeTokenURL(server, mac, phase, token string) string {
	return PhoneHomeURL(server, mac, phase) + "?" + TokenQuery + "=" + url.QueryEscape(token)
}
