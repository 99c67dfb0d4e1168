package wan

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"time"
)

// Role is what a certificate allows its holder to do; it is carried as the
// certificate's Subject OU.
type Role string

// The roles.
const (
	// RoleNode may speak ALPNNode and serve.
	RoleNode Role = "node"
	// RoleClient may speak ALPNClient only.
	RoleClient Role = "client"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r == RoleNode || r == RoleClient }

// clockSkew is how far into the past certificates are back-dated, so a
// peer whose clock runs a little behind accepts a fresh certificate.
const clockSkew = time.Hour

// CA is a cluster certificate authority: it issues the node and client
// certificates that peers accept.
type CA struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	CertPEM []byte
}

// NewCA creates a self-signed ECDSA P-256 cluster CA named name, valid from
// now-1h for validity. It returns the CA and its PKCS #8 private key PEM.
func NewCA(name string, now time.Time, validity time.Duration) (*CA, []byte, error) {
	if name == "" {
		return nil, nil, errors.New("wan: CA name is empty")
	}
	if validity <= 0 {
		return nil, nil, fmt.Errorf("wan: CA validity %v must be positive", validity)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("wan: generate CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name, Organization: []string{"Meridian"}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(validity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("wan: create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("wan: parse CA certificate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return &CA{Cert: cert, Key: key, CertPEM: encodeCert(der)}, keyPEM, nil
}

// LoadCA parses a CA certificate and its private key, checking that they
// belong together and that the certificate is a CA.
func LoadCA(certPEM, keyPEM []byte) (*CA, error) {
	certs, err := parseCerts(certPEM)
	if err != nil {
		return nil, fmt.Errorf("wan: CA certificate: %w", err)
	}
	cert := certs[0]
	if !cert.IsCA {
		return nil, fmt.Errorf("wan: CA certificate %q is not a CA certificate", cert.Subject.CommonName)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("wan: CA key: %w", err)
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		return nil, fmt.Errorf("wan: CA key does not belong to CA certificate %q", cert.Subject.CommonName)
	}
	return &CA{Cert: cert, Key: key, CertPEM: encodeCert(cert.Raw)}, nil
}

// Issue signs a leaf certificate for name with role, valid from now-1h for
// validity (but never past the CA's own expiry); see IssueRequest.
func (ca *CA) Issue(name string, role Role, hosts []string, now time.Time, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	return ca.IssueRequest(CertRequest{Name: name, Role: role, Hosts: hosts, Now: now, Validity: validity})
}

// CertRequest describes a leaf certificate to issue.
type CertRequest struct {
	// Name is the Subject CN: a node id, or a client's name.
	Name string
	// Role is the Subject OU.
	Role Role
	// Hosts become IP or DNS subject alternative names (a ":port" suffix
	// is ignored).
	Hosts []string
	// DC, for a node certificate, records the node's datacenter in a URI
	// SAN meridian://node/NAME?dc=DC (informational: the node's identity
	// stays its CN and OU).
	DC string
	// Principal, for a client certificate, adds a URI SAN
	// meridian://principal/PRINCIPAL naming the client's principal.
	Principal string
	// Now and Validity: the certificate is valid from Now-1h for Validity,
	// but never past the CA's own expiry.
	Now      time.Time
	Validity time.Duration
}

// IssueRequest signs a leaf certificate as r describes. Subject CN is
// r.Name and Subject OU the role; the certificate may be used for both
// server and client authentication. It returns the certificate and PKCS #8
// key PEMs.
func (ca *CA) IssueRequest(r CertRequest) (certPEM, keyPEM []byte, err error) {
	name, role, now, validity := r.Name, r.Role, r.Now, r.Validity
	if name == "" {
		return nil, nil, errors.New("wan: certificate name is empty")
	}
	if !role.Valid() {
		return nil, nil, fmt.Errorf("wan: unknown role %q (want %q or %q)", role, RoleNode, RoleClient)
	}
	if validity <= 0 {
		return nil, nil, fmt.Errorf("wan: certificate validity %v must be positive", validity)
	}
	if r.Principal != "" && (role != RoleClient || strings.Contains(r.Principal, "/")) {
		return nil, nil, fmt.Errorf("wan: principal %q: only client certificates name a principal, and it may not contain \"/\"", r.Principal)
	}
	if r.DC != "" && role != RoleNode {
		return nil, nil, fmt.Errorf("wan: only node certificates record a datacenter (got dc %q for a %s certificate)", r.DC, role)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("wan: generate key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	notAfter := now.Add(validity)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name, OrganizationalUnit: []string{string(role)}, Organization: []string{"Meridian"}},
		NotBefore:    now.Add(-clockSkew),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range r.Hosts {
		if host, _, err := net.SplitHostPort(h); err == nil {
			h = host
		}
		if h == "" {
			continue
		}
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	if role == RoleNode {
		tmpl.URIs = append(tmpl.URIs, NodeURI(name, r.DC))
	}
	if r.Principal != "" {
		tmpl.URIs = append(tmpl.URIs, PrincipalURI(r.Principal))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("wan: sign certificate for %q: %w", name, err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return encodeCert(der), keyPEM, nil
}

func newSerial() (*big.Int, error) {
	s, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("wan: generate serial number: %w", err)
	}
	return s.Add(s, big.NewInt(1)), nil
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func encodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("wan: encode private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// parseCerts returns every CERTIFICATE block in data, in order.
func parseCerts(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("bad certificate in PEM: %w", err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM \"CERTIFICATE\" block found")
	}
	return certs, nil
}

// parseKey reads the first private key block (PKCS #8, SEC 1 EC or PKCS #1).
func parseKey(data []byte) (crypto.Signer, error) {
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, errors.New("no PEM private key block found")
		}
		var (
			k   any
			err error
		)
		switch b.Type {
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("bad %s: %w", b.Type, err)
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("unsupported private key type %T", k)
		}
		return s, nil
	}
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	ak, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ak.Equal(b)
}

// ParseCertificates returns every CERTIFICATE block of a PEM file, in
// order.
func ParseCertificates(pemData []byte) ([]*x509.Certificate, error) { return parseCerts(pemData) }

// CertIdentity returns what a certificate says about its holder (its
// chain is not verified).
func CertIdentity(cert *x509.Certificate) (Identity, error) { return identityOf(cert) }
