// Package imagetest holds the integration test of racklift's Debian 12
// disk image (build-debian12.sh, make image-debian12): it builds or reuses
// the image, imports it with provision/image's Store, and boots what the
// store gives back in QEMU on SeaBIOS and on OVMF with Secure Boot
// enforced, with a NoCloud seed whose network-config bonds two NICs and
// tags a VLAN. Run it as root:
//
//	go test -tags integration -run TestDebian12Image -v -timeout 45m ./hack/image/
//
// RACKLIFT_DEBIAN12_IMAGE=PATH tests another build of the image (it is
// built there if missing); RACKLIFT_TESTBED_KEEP=DIR keeps the disks and
// serial logs.
package imagetest
