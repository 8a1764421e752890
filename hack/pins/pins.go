//go:build pins

// Package pins keeps the customer's fixed libraries in go.mod before the
// code that uses them lands. It is never built (the "pins" tag is never
// set); go mod tidy still reads it. Remove a line once real code imports it.
package pins

import (
	_ "github.com/bmc-toolbox/bmclib/v2"
	_ "github.com/chromedp/chromedp"
	_ "github.com/go-chi/chi/v5"
	_ "github.com/insomniacslk/dhcp/dhcpv4"
	_ "github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	_ "github.com/insomniacslk/dhcp/dhcpv4/server4"
	_ "github.com/insomniacslk/dhcp/iana"
	_ "golang.org/x/net/icmp"
	_ "golang.org/x/net/ipv4"
	_ "golang.org/x/net/ipv6"
	_ "golang.org/x/sync/errgroup"
	_ "gopkg.in/yaml.v3"
	_ "modernc.org/sqlite"
)
