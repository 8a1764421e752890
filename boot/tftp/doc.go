// Package tftp is racklift's read-only TFTP server: the first file a
// PXE-booting machine fetches (an iPXE binary) comes from here. It wraps
// github.com/pin/tftp/v3 (v3.1.0) and adds path confinement, a MAC prefix in
// the file name, and one event per transfer start and outcome.
//
// # Protocol
//
// RFC 1350 (TFTP rev 2), read requests only; write requests are refused
// ("server does not support write requests"). Options (RFC 2347): blksize
// (RFC 2348) is negotiated up to Server.BlockSize, and tsize (RFC 2349) is
// answered with the file's size, which many PXE ROMs need. pin/tftp v3.1.0
// silently drops every other option, windowsize (RFC 7440) included, so
// transfers are lock-step: one block per ACK. Each transfer runs on a new UDP
// socket bound to an ephemeral port (the RFC 1350 TID), so firewalls must let
// replies from ports other than 69 through. netascii mode is served as
// pin/tftp converts it, but its tsize is the file's size, not the converted
// size; PXE clients use octet mode.
//
// # File names
//
// A request names "<mac>/<file>" or just "<file>", for example
// "52:54:00:12:34:56/undionly.kpxe" or "52-54-00-12-34-56/snponly.efi".
// racklift's DHCP server puts the MAC into the boot file name so that the
// TFTP side knows which machine is asking. The MAC is stripped, parsed and
// carried in the events; <file> is looked up in Server.Files (then
// Server.Extra). Names that are absolute, contain a ".." element, a
// backslash or a control character (NUL included) are refused before any
// lookup, and the rest is cleaned with path.Clean("/"+name), so no request
// can leave the served fs.FS.
//
// Error messages are sent to the client as TFTP ERROR packets, so they name
// only the requested file ("undionly.kpxe: file does not exist"); details
// such as host paths go to the log.
//
// # Events
//
// Every read request produces one "tftp.start" event and then exactly one of
// "tftp.done" (attrs client_ip, file, bytes, duration_ms, blksize) or
// "tftp.failed" (attrs client_ip, file, reason, bytes, duration_ms), with
// Source SourceTFTP and MAC from the file name. The outcome comes from
// pin/tftp's Hook. Phase is PhaseNone, except that a tftp.done for an iPXE
// binary (a file named like one in boot/ipxe's FS, e.g. undionly.kpxe) from
// a request that carried a MAC has PhaseIPXE: the firmware has fetched iPXE
// and runs it next. Starts and failures never move a node's phase: PXE ROMs
// retry, and a tsize probe that the client aborts on purpose is a "failure"
// too; the orchestrator decides what a run of failures means.
package tftp
