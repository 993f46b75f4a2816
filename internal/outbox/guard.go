package outbox

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"syscall"

	"github.com/fsmd-io/fsmd/internal/machine"
)

// refusedNetwork is a network the dispatcher does not deliver to unless Config.Allow names it.
type refusedNetwork struct {
	prefix netip.Prefix
	what   string
}

// defaultRefused are the networks refused by default: the cloud metadata addresses
// (machine.MetadataAddrs), link-local addresses (where most metadata services answer), and
// addresses that are no single remote host.
var defaultRefused = append(metadataNetworks(), []refusedNetwork{
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("0.0.0.0/8"), `"this network" (0.0.0.0 reaches the local host)`},
	{netip.MustParsePrefix("::/128"), "the unspecified address"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
	{netip.MustParsePrefix("255.255.255.255/32"), "broadcast"},
}...)

func metadataNetworks() []refusedNetwork {
	out := make([]refusedNetwork, len(machine.MetadataAddrs))
	for i, a := range machine.MetadataAddrs {
		out[i] = refusedNetwork{netip.PrefixFrom(a, a.BitLen()), "a cloud metadata address"}
	}
	return out
}

// nat64 is the well-known NAT64 prefix: its addresses reach the IPv4 address in their last 32 bits,
// which is checked as well.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// PrivateNetworks are the loopback, private and shared (carrier-grade NAT) networks. fsmd delivers
// to them by default (receivers in the same network are common); Config.Deny = PrivateNetworks
// refuses them.
var PrivateNetworks = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("fc00::/7"),
}

// RefusedError is a destination the dispatcher does not deliver to: its delivery is dead at once.
type RefusedError struct {
	Host    string       // the URL's host, or the address connected to
	Addr    netip.Addr   // the address connected to; invalid when the name itself is refused
	Network netip.Prefix // the refused network holding Addr
	What    string       // what the network is
}

func (e *RefusedError) Error() string {
	if !e.Addr.IsValid() {
		return fmt.Sprintf("refused: %s is %s; fsmd delivers there only when the process allows 169.254.169.254", e.Host, e.What)
	}
	return fmt.Sprintf("refused: %s is %s (in %s); fsmd delivers there only when the process allows it", e.Addr, e.What, e.Network)
}

// guard decides which addresses the dispatcher may connect to.
type guard struct {
	allow   []netip.Prefix
	refused []refusedNetwork
}

func newGuard(allow, deny []netip.Prefix) *guard {
	g := &guard{allow: allow, refused: slices.Clone(defaultRefused)}
	for _, p := range deny {
		g.refused = append(g.refused, refusedNetwork{p.Masked(), "a network the process refuses"})
	}
	return g
}

// checkHost refuses the names of metadata services (machine.MetadataHosts), before any lookup
// (they resolve to a refused address where they resolve at all), unless Config.Allow holds
// 169.254.169.254.
func (g *guard) checkHost(host string) error {
	if !slices.Contains(machine.MetadataHosts, strings.ToLower(strings.TrimSuffix(host, "."))) {
		return nil
	}
	if g.allowed(netip.MustParseAddr("169.254.169.254")) {
		return nil
	}
	return &RefusedError{Host: host, What: "a cloud metadata service"}
}

func (g *guard) allowed(a netip.Addr) bool {
	return slices.ContainsFunc(g.allow, func(p netip.Prefix) bool { return p.Contains(a) })
}

// checkAddr refuses an address in a refused network, unless Allow holds it. host names the URL's
// host in the error.
func (g *guard) checkAddr(host string, a netip.Addr) error {
	a = a.Unmap()
	if g.allowed(a) {
		return nil
	}
	for _, r := range g.refused {
		if r.prefix.Contains(a) {
			return &RefusedError{Host: host, Addr: a, Network: r.prefix, What: r.what}
		}
	}
	if nat64.Contains(a) {
		b := a.As16()
		return g.checkAddr(host, netip.AddrFrom4([4]byte(b[12:])))
	}
	return nil
}

// control is the dialer's Control function: it runs with the address the connection is about to
// be made to, after DNS resolution, so a name that resolves (or rebinds) to a refused address is
// refused however it was looked up.
func (g *guard) control(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("refused: %q is not an IP address", host)
	}
	return g.checkAddr(host, a)
}
