package config

import (
	"fmt"
	"net"
	"slices"
	"strings"
)

// listener is one of s3seal's listen addresses and the variable that sets it.
type listener struct{ name, addr string }

// listeners are the addresses serve binds: the KMS API's only with the
// keyring provider, the one it serves.
func (c Config) listeners() []listener {
	ls := []listener{{"S3SEAL_ADDR", c.Addr}, {"S3SEAL_METRICS_ADDR", c.MetricsAddr}}
	if c.KMSAPIAddr != "" && c.KMSProvider == ProviderKeyring {
		ls = append(ls, listener{"S3SEAL_KMS_API_ADDR", c.KMSAPIAddr})
	}
	return ls
}

// checkDistinctAddrs refuses two listeners on one port: the second bind
// would fail with "address already in use", which sends the operator
// looking for another program when the clash is in s3seal's own settings.
// Port 0 (any free port) never clashes.
func (c Config) checkDistinctAddrs() error {
	ls := c.listeners()
	for i, a := range ls {
		for _, b := range ls[i+1:] {
			if clash(a.addr, b.addr) {
				return fmt.Errorf("%s and %s are %q and %q: both listen on port %s; "+
					"each listener needs a port of its own (the defaults are 8080, 9464 and 8081)",
					a.name, b.name, a.addr, b.addr, port(a.addr))
			}
		}
	}
	return nil
}

// clash says whether binding both addresses would collide: the same port,
// and the same host (as IPs: [::1] is [0:0:0:0:0:0:0:1]; localhost is
// loopback) or either on every interface ("", 0.0.0.0, ::).
func clash(a, b string) bool {
	ha, pa, errA := net.SplitHostPort(a)
	hb, pb, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil || pa != pb || pa == "0" {
		return false
	}
	if anyHost(ha) || anyHost(hb) || strings.EqualFold(ha, hb) {
		return true
	}
	ipa, ipb := hostIPs(ha), hostIPs(hb)
	for _, x := range ipa {
		if slices.ContainsFunc(ipb, x.Equal) {
			return true
		}
	}
	return false
}

func anyHost(h string) bool {
	ip := net.ParseIP(h)
	return h == "" || (ip != nil && ip.IsUnspecified())
}

// hostIPs is what a listen host means without asking DNS: an IP, or
// localhost's loopback addresses (Go's resolver binds localhost to them).
func hostIPs(h string) []net.IP {
	if ip := net.ParseIP(h); ip != nil {
		return []net.IP{ip}
	}
	if strings.EqualFold(h, "localhost") {
		return []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	}
	return nil
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}
