package wan

import (
	"bufio"
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"net/url"
	"os"
	"slices"
	"strings"
)

// ErrRevoked reports a certificate whose serial is on the revocation list.
var ErrRevoked = errors.New("wan: certificate revoked")

// FormatSerial writes a certificate serial number as Meridian shows it
// (`meridian cert list`, logs, Identity.Serial): lower-case hex without
// leading zeros or colons.
func FormatSerial(n *big.Int) string {
	if n == nil {
		return ""
	}
	return n.Text(16)
}

// ParseSerial reads a serial number written in hex, with or without colons
// (openssl's "3F:2A:…"), in any case, with an optional 0x prefix, and
// returns it as FormatSerial writes it.
func ParseSerial(s string) (string, error) {
	h := strings.ReplaceAll(strings.TrimSpace(s), ":", "")
	h = strings.TrimPrefix(strings.TrimPrefix(h, "0x"), "0X")
	n, ok := new(big.Int).SetString(h, 16)
	if h == "" || !ok || n.Sign() < 0 {
		return "", fmt.Errorf("%q is not a certificate serial number in hex (as `meridian cert list` prints it)", s)
	}
	return FormatSerial(n), nil
}

// revokedSerials reads f.Revoked and f.RevokedFile, normalised.
func (f TLSFiles) revokedSerials() ([]string, error) {
	var out []string
	var errs []error
	for i, s := range f.Revoked {
		n, err := ParseSerial(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("wan: tls.revoked[%d]: %w", i, err))
			continue
		}
		out = append(out, n)
	}
	if f.RevokedFile != "" {
		b, err := os.ReadFile(f.RevokedFile)
		if err != nil {
			return nil, fmt.Errorf("wan: read tls.revoked_file: %w", err)
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for line := 1; sc.Scan(); line++ {
			text, _, _ := strings.Cut(sc.Text(), "#")
			if strings.TrimSpace(text) == "" {
				continue
			}
			n, err := ParseSerial(text)
			if err != nil {
				errs = append(errs, fmt.Errorf("wan: tls.revoked_file %s line %d: %w", f.RevokedFile, line, err))
				continue
			}
			out = append(out, n)
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("wan: read tls.revoked_file %s: %w", f.RevokedFile, err)
		}
	}
	return out, errors.Join(errs...)
}

// WithRevoked returns a copy of c whose revocation list is serials (hex,
// as ParseSerial reads them). It fails if c's own certificate is listed.
func (c *Credentials) WithRevoked(serials ...string) (*Credentials, error) {
	norm := make([]string, 0, len(serials))
	for _, s := range serials {
		n, err := ParseSerial(s)
		if err != nil {
			return nil, fmt.Errorf("wan: revocation list: %w", err)
		}
		norm = append(norm, n)
	}
	return c.withRevoked(norm, "this process's certificate")
}

// withRevoked is WithRevoked of normalised serials; what names c's own
// certificate in errors.
func (c *Credentials) withRevoked(serials []string, what string) (*Credentials, error) {
	cc := *c
	cc.revoked = make(map[string]bool, len(serials))
	for _, s := range serials {
		cc.revoked[s] = true
	}
	if cc.revoked[c.id.Serial] {
		return nil, fmt.Errorf("%w: %s (%s, serial %s) is on its own revocation list: issue a new one (`meridian cert create-node` or `create-client`) before revoking this one", ErrRevoked, what, c.id, c.id.Serial)
	}
	return &cc, nil
}

// Revoked returns the revoked serials, sorted.
func (c *Credentials) Revoked() []string {
	return slices.Sorted(maps.Keys(c.revoked))
}

// URI subject alternative names Meridian writes and reads.
const (
	// PrincipalURIPrefix starts a client certificate's principal URI,
	// meridian://principal/NAME; NAME takes precedence over the Subject CN.
	PrincipalURIPrefix = "meridian://principal/"
	// NodeURIPrefix starts a node certificate's URI,
	// meridian://node/ID?dc=DC, which records the node's datacenter.
	NodeURIPrefix = "meridian://node/"
)

// PrincipalURI is the URI SAN naming principal name.
func PrincipalURI(name string) *url.URL {
	return &url.URL{Scheme: "meridian", Host: "principal", Path: "/" + name}
}

// NodeURI is the URI SAN of node id in datacenter dc.
func NodeURI(id, dc string) *url.URL {
	u := &url.URL{Scheme: "meridian", Host: "node", Path: "/" + id}
	if dc != "" {
		u.RawQuery = url.Values{"dc": {dc}}.Encode()
	}
	return u
}

// principalOf returns the NAME of cert's meridian://principal/NAME URI
// SAN, or "" if it has none. Two different principals are an error.
func principalOf(cert *x509.Certificate) (string, error) {
	var name string
	for _, u := range cert.URIs {
		if u.Scheme != "meridian" || u.Host != "principal" {
			continue
		}
		p := strings.TrimPrefix(u.Path, "/")
		if p == "" || strings.Contains(p, "/") {
			return "", fmt.Errorf("principal URI %q must be %sNAME with a NAME and no further slash", u, PrincipalURIPrefix)
		}
		if name != "" && name != p {
			return "", fmt.Errorf("certificate names two principals, %q and %q", name, p)
		}
		name = p
	}
	return name, nil
}

// NodeDC returns the datacenter recorded in a node certificate's
// meridian://node/ID?dc=DC URI SAN, or "".
func NodeDC(cert *x509.Certificate) string {
	for _, u := range cert.URIs {
		if u.Scheme == "meridian" && u.Host == "node" {
			return u.Query().Get("dc")
		}
	}
	return ""
}
