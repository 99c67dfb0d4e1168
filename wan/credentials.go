package wan

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"
)

// TLSFiles names the PEM files of a node's or client's credentials.
type TLSFiles struct {
	// CA is the cluster CA certificate (a bundle of several is allowed,
	// e.g. during CA rotation).
	CA string `yaml:"ca"`
	// Cert is this process's certificate, optionally followed by
	// intermediates.
	Cert string `yaml:"cert"`
	// Key is the private key of Cert.
	Key string `yaml:"key"`
	// Revoked lists revoked certificate serial numbers in hex (colons
	// optional, any case, as `meridian cert list` or openssl print them).
	// A peer or client presenting a listed certificate is refused at the
	// handshake, in both directions, and its open connections are closed
	// when the list is reloaded.
	Revoked []string `yaml:"revoked,omitempty"`
	// RevokedFile names a file of revoked serials, one a line; "#" starts a
	// comment. It adds to Revoked. Re-read on every reload.
	RevokedFile string `yaml:"revoked_file,omitempty"`
}

// Load reads and validates the files; see LoadCredentials.
func (f TLSFiles) Load(now time.Time) (*Credentials, error) { return LoadCredentials(f, now) }

// Identity is what a verified certificate says about its holder.
type Identity struct {
	// Name is the principal: for a node certificate its Subject CN (the
	// node id); for a client certificate the NAME of a URI SAN
	// meridian://principal/NAME if it has one, else its Subject CN.
	Name string
	// Role is the certificate's Subject OU.
	Role Role
	// Serial is the certificate's serial number in lower-case hex (see
	// FormatSerial), for logs, audit and the revocation list.
	Serial string
}

func (id Identity) String() string { return string(id.Role) + " " + id.Name }

// Credentials are a loaded cluster CA pool, this process's own
// certificate and key, and the serials of revoked certificates. They are
// immutable and safe for concurrent use; a Transport or Dialer can be given
// new ones at run time (SetCredentials).
type Credentials struct {
	roots   *x509.CertPool
	cert    tls.Certificate
	leaf    *x509.Certificate
	id      Identity
	revoked map[string]bool // normalised serials (FormatSerial)
}

// LoadCredentials reads the three PEM files and validates them as
// NewCredentials does; errors name the offending file.
func LoadCredentials(f TLSFiles, now time.Time) (*Credentials, error) {
	var missing []error
	if f.CA == "" {
		missing = append(missing, errors.New("wan: tls.ca (the cluster CA certificate file) is not set"))
	}
	if f.Cert == "" {
		missing = append(missing, errors.New("wan: tls.cert (this process's certificate file) is not set"))
	}
	if f.Key == "" {
		missing = append(missing, errors.New("wan: tls.key (this process's private key file) is not set"))
	}
	if len(missing) > 0 {
		return nil, errors.Join(missing...)
	}
	read := func(what, path string) ([]byte, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("wan: read %s: %w", what, err)
		}
		return b, nil
	}
	caPEM, err := read("CA certificate", f.CA)
	if err != nil {
		return nil, err
	}
	certPEM, err := read("certificate", f.Cert)
	if err != nil {
		return nil, err
	}
	keyPEM, err := read("private key", f.Key)
	if err != nil {
		return nil, err
	}
	c, err := newCredentials(caPEM, certPEM, keyPEM, now, TLSFiles{
		CA:   fmt.Sprintf("CA certificate %s", f.CA),
		Cert: fmt.Sprintf("certificate %s", f.Cert),
		Key:  fmt.Sprintf("private key %s", f.Key),
	})
	if err != nil {
		return nil, err
	}
	serials, err := f.revokedSerials()
	if err != nil {
		return nil, err
	}
	return c.withRevoked(serials, fmt.Sprintf("certificate %s", f.Cert))
}

// NewCredentials parses PEM-encoded credentials and checks that the
// certificate matches the key, is valid at now, carries a known role and a
// name, and is signed by the CA.
func NewCredentials(caPEM, certPEM, keyPEM []byte, now time.Time) (*Credentials, error) {
	return newCredentials(caPEM, certPEM, keyPEM, now, TLSFiles{CA: "CA certificate", Cert: "certificate", Key: "private key"})
}

// newCredentials is NewCredentials with errors naming the inputs by labels.

// reissueHint tells an operator how to get a fresh certificate.
const reissueHint = "reissue it from the cluster CA (`meridian cert create-node` or `create-client`; for a dev cluster, `meridian dev --config-only` writes a fresh set)"

func newCredentials(caPEM, certPEM, keyPEM []byte, now time.Time, names TLSFiles) (*Credentials, error) {
	cas, err := parseCerts(caPEM)
	if err != nil {
		return nil, fmt.Errorf("wan: %s: %w", names.CA, err)
	}
	roots := x509.NewCertPool()
	for _, c := range cas {
		roots.AddCert(c)
	}
	chain, err := parseCerts(certPEM)
	if err != nil {
		return nil, fmt.Errorf("wan: %s: %w", names.Cert, err)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("wan: %s: %w", names.Key, err)
	}
	leaf := chain[0]
	if !publicKeysEqual(leaf.PublicKey, key.Public()) {
		return nil, fmt.Errorf("wan: %s does not belong to %s (%q)", names.Key, names.Cert, leaf.Subject.CommonName)
	}
	id, err := identityOf(leaf)
	if err != nil {
		return nil, fmt.Errorf("wan: %s: %w", names.Cert, err)
	}
	if now.Before(leaf.NotBefore) {
		return nil, fmt.Errorf("wan: %s (%s) is not valid until %s, but the time is %s: check this machine's clock, or %s",
			names.Cert, id, leaf.NotBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), reissueHint)
	}
	if now.After(leaf.NotAfter) {
		return nil, fmt.Errorf("wan: %s (%s) expired at %s (valid from %s; the time is %s): %s",
			names.Cert, id, leaf.NotAfter.UTC().Format(time.RFC3339), leaf.NotBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), reissueHint)
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	usages := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	if id.Role == RoleNode {
		usages = append(usages, x509.ExtKeyUsageServerAuth)
	}
	for _, u := range usages {
		_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{u}})
		if err != nil {
			return nil, fmt.Errorf("wan: %s (%s) does not verify against the cluster %s: %s: %s", names.Cert, id, names.CA, explainVerify(err, now), reissueHint)
		}
	}
	raw := make([][]byte, len(chain))
	for i, c := range chain {
		raw[i] = c.Raw
	}
	return &Credentials{
		roots: roots,
		cert:  tls.Certificate{Certificate: raw, PrivateKey: key, Leaf: leaf},
		leaf:  leaf,
		id:    id,
	}, nil
}

// Identity returns what this process's own certificate says.
func (c *Credentials) Identity() Identity { return c.id }

// Leaf returns this process's own certificate.
func (c *Credentials) Leaf() *x509.Certificate { return c.leaf }

// identityOf extracts the Identity of a certificate that has been verified.
func identityOf(cert *x509.Certificate) (Identity, error) {
	name := cert.Subject.CommonName
	if name == "" {
		return Identity{}, errors.New("certificate has no Subject CN (the node or client name)")
	}
	var role Role
	for _, ou := range cert.Subject.OrganizationalUnit {
		if r := Role(ou); r.Valid() {
			role = r
			break
		}
	}
	if role == "" {
		return Identity{}, fmt.Errorf("certificate %q has no role: its Subject OU must be %q or %q", name, RoleNode, RoleClient)
	}
	id := Identity{Name: name, Role: role, Serial: FormatSerial(cert.SerialNumber)}
	if role == RoleClient {
		principal, err := principalOf(cert)
		if err != nil {
			return Identity{}, fmt.Errorf("certificate %q (serial %s): %w", name, id.Serial, err)
		}
		if principal != "" {
			id.Name = principal
		}
	}
	return id, nil
}

// explainVerify turns an x509 verification error into a sentence.
func explainVerify(err error, now time.Time) string {
	var ua x509.UnknownAuthorityError
	if errors.As(err, &ua) {
		issuer := "unknown"
		if ua.Cert != nil {
			issuer = fmt.Sprintf("%q", ua.Cert.Issuer.CommonName)
		}
		return fmt.Sprintf("it is not signed by the cluster CA (issuer %s)", issuer)
	}
	var ci x509.CertificateInvalidError
	if errors.As(err, &ci) {
		switch ci.Reason {
		case x509.Expired:
			c := ci.Cert
			return fmt.Sprintf("%q is expired or not yet valid (valid %s to %s, the time is %s)",
				c.Subject.CommonName, c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
		case x509.IncompatibleUsage:
			return "its extended key usage does not allow this use"
		}
	}
	return err.Error()
}

// verifyPeer verifies a peer's certificate chain as presented in a
// handshake; see verifyChain.
func (c *Credentials) verifyPeer(rawCerts [][]byte, usage x509.ExtKeyUsage) (Identity, error) {
	if len(rawCerts) == 0 {
		return Identity{}, errors.New("wan: peer presented no certificate")
	}
	certs := make([]*x509.Certificate, len(rawCerts))
	for i, raw := range rawCerts {
		cert, err := x509.ParseCertificate(raw)
		if err != nil {
			return Identity{}, fmt.Errorf("wan: peer certificate: %w", err)
		}
		certs[i] = cert
	}
	return c.verifyChain(certs, usage, time.Now())
}

// verifyChain verifies a peer's certificate chain against the cluster CA
// at now (no host name matching: identity comes from CN, OU and the
// principal URI), refuses a revoked leaf, and returns the peer's identity.
// A peer that serves (usage ServerAuth) must hold a node certificate.
func (c *Credentials) verifyChain(certs []*x509.Certificate, usage x509.ExtKeyUsage, now time.Time) (Identity, error) {
	if len(certs) == 0 {
		return Identity{}, errors.New("wan: peer presented no certificate")
	}
	inter := x509.NewCertPool()
	for _, cert := range certs[1:] {
		inter.AddCert(cert)
	}
	leaf := certs[0]
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: c.roots, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		return Identity{}, fmt.Errorf("wan: peer certificate %q (serial %s) refused: %s", leaf.Subject.CommonName, FormatSerial(leaf.SerialNumber), explainVerify(err, now))
	}
	id, err := identityOf(leaf)
	if err != nil {
		return Identity{}, fmt.Errorf("wan: peer %w", err)
	}
	if c.revoked[id.Serial] {
		return id, fmt.Errorf("%w: peer certificate of %s (serial %s) is on the revocation list (tls.revoked / tls.revoked_file)", ErrRevoked, id, id.Serial)
	}
	if usage == x509.ExtKeyUsageServerAuth && id.Role != RoleNode {
		return id, fmt.Errorf("wan: peer %q presents a %s certificate; only nodes serve", id.Name, id.Role)
	}
	return id, nil
}

// serverTLS is the listener's configuration: TLS 1.3, both ALPNs, a client
// certificate required and verified against the cluster CA. Every
// handshake takes the current credentials from live. Which role may use
// which ALPN is checked after the handshake.
func (live *liveCredentials) serverTLS(onRefuse func(error)) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return &live.Load().cert, nil
		},
		ClientAuth:             tls.RequireAnyClientCert,
		NextProtos:             []string{ALPNNode, ALPNClient},
		SessionTicketsDisabled: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			_, err := live.Load().verifyPeer(raw, x509.ExtKeyUsageClientAuth)
			if err != nil && onRefuse != nil {
				onRefuse(err)
			}
			return err
		},
	}
}

// clientTLS is the dialer's configuration: TLS 1.3, one ALPN, and the
// server's chain verified against the cluster CA; only nodes serve. Every
// handshake takes the current credentials from live.
func (live *liveCredentials) clientTLS(alpn string) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		NextProtos:         []string{alpn},
		InsecureSkipVerify: true, // no host names: verifyPeer checks the chain against the cluster CA
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &live.Load().cert, nil
		},
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			_, err := live.Load().verifyPeer(raw, x509.ExtKeyUsageServerAuth)
			return err
		},
	}
}

// statelessResetKey derives a QUIC stateless reset key from the private
// key, so a node restarted with the same credentials can reset its peers'
// connections from before the restart (RFC 9000 §10.3) and they re-dial at
// once instead of waiting for the idle timeout.
func (c *Credentials) statelessResetKey() ([32]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(c.cert.PrivateKey)
	if err != nil {
		return [32]byte{}, fmt.Errorf("wan: derive stateless reset key: %w", err)
	}
	return sha256.Sum256(append([]byte("meridian quic stateless reset\x00"), der...)), nil
}
