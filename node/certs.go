package node

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/meridian-kv/meridian/wan"
)

// A certificates directory holds the cluster CA as ca.pem and ca-key.pem,
// and each node's or client's certificate and key as NAME.pem and
// NAME-key.pem (PEM; keys 0600). `meridian cert` and `meridian dev` write
// it with the functions below.
const (
	CACertFile = "ca.pem"
	CAKeyFile  = "ca-key.pem"
)

// ErrCertExists is returned when a certificate or key file would be
// replaced without overwrite.
var ErrCertExists = errors.New("node: certificate file already exists")

// ErrNoCA is returned when a certificates directory has no CA to sign with.
var ErrNoCA = errors.New("node: no cluster CA")

// CertFile and KeyFile name the files of name's certificate in dir.
func CertFile(dir, name string) string { return filepath.Join(dir, name+".pem") }

// KeyFile: see CertFile.
func KeyFile(dir, name string) string { return filepath.Join(dir, name+"-key.pem") }

// CreateCA makes a cluster CA named name, valid from now for lifetime, and
// writes dir/ca.pem and dir/ca-key.pem. Existing files are replaced only
// with overwrite (every certificate it signed stops being trusted once
// nodes load the new CA alone).
func CreateCA(dir, name string, now time.Time, lifetime time.Duration, overwrite bool) (*wan.CA, error) {
	certFile, keyFile := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	if err := checkFree(overwrite, certFile, keyFile); err != nil {
		return nil, err
	}
	ca, keyPEM, err := wan.NewCA(name, now, lifetime)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	if err := writePair(dir, certFile, ca.CertPEM, keyFile, keyPEM); err != nil {
		return nil, err
	}
	return ca, nil
}

// LoadCA reads the cluster CA of dir (dir/ca.pem) with its key (keyFile,
// default dir/ca-key.pem), to sign with.
func LoadCA(dir, keyFile string) (*wan.CA, error) {
	certFile := filepath.Join(dir, CACertFile)
	if keyFile == "" {
		keyFile = filepath.Join(dir, CAKeyFile)
	}
	certPEM, err := os.ReadFile(certFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s does not exist: create the CA first (meridian cert create-ca --certs-dir %s), or point --certs-dir at the directory that holds it", ErrNoCA, certFile, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: the CA key %s does not exist: signing needs it (pass --ca-key if it is kept elsewhere)", ErrNoCA, keyFile)
	}
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	ca, err := wan.LoadCA(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("node: %s, %s: %w", certFile, keyFile, err)
	}
	return ca, nil
}

// WriteNodeCert issues node id's certificate (recording its datacenter dc
// and the hosts it is reached at) and writes dir/ID.pem and dir/ID-key.pem.
// The returned files name dir/ca.pem as the CA.
func WriteNodeCert(ca *wan.CA, dir, id, dc string, hosts []string, now time.Time, lifetime time.Duration, overwrite bool) (wan.TLSFiles, error) {
	if id == "" || dc == "" {
		return wan.TLSFiles{}, errors.New("node: a node certificate needs the node's id and datacenter")
	}
	return writeLeaf(ca, dir, wan.CertRequest{Name: id, Role: wan.RoleNode, DC: dc, Hosts: hosts, Now: now, Validity: lifetime}, overwrite)
}

// WriteClientCert issues a client certificate for principal name (as CN
// and as a meridian://principal/NAME URI) and writes dir/NAME.pem and
// dir/NAME-key.pem.
func WriteClientCert(ca *wan.CA, dir, name string, now time.Time, lifetime time.Duration, overwrite bool) (wan.TLSFiles, error) {
	if name == "" {
		return wan.TLSFiles{}, errors.New("node: a client certificate needs a name")
	}
	return writeLeaf(ca, dir, wan.CertRequest{Name: name, Role: wan.RoleClient, Principal: name, Now: now, Validity: lifetime}, overwrite)
}

func writeLeaf(ca *wan.CA, dir string, r wan.CertRequest, overwrite bool) (wan.TLSFiles, error) {
	if strings.ContainsAny(r.Name, `/\`) || r.Name == "." || r.Name == ".." || r.Name == strings.TrimSuffix(CACertFile, ".pem") {
		return wan.TLSFiles{}, fmt.Errorf("node: %q cannot name a certificate file", r.Name)
	}
	f := wan.TLSFiles{CA: abs(filepath.Join(dir, CACertFile)), Cert: abs(CertFile(dir, r.Name)), Key: abs(KeyFile(dir, r.Name))}
	if err := checkFree(overwrite, f.Cert, f.Key); err != nil {
		return f, err
	}
	certPEM, keyPEM, err := ca.IssueRequest(r)
	if err != nil {
		return f, fmt.Errorf("node: issuing %s certificate %q: %w", r.Role, r.Name, err)
	}
	return f, writePair(dir, f.Cert, certPEM, f.Key, keyPEM)
}

// checkFree refuses to replace existing files unless overwrite.
func checkFree(overwrite bool, files ...string) error {
	if overwrite {
		return nil
	}
	for _, f := range files {
		if _, err := os.Lstat(f); err == nil {
			return fmt.Errorf("%w: %s: pass --overwrite to replace it", ErrCertExists, f)
		}
	}
	return nil
}

// writePair writes a key (0600) and then its certificate (0644), each
// atomically (a temporary file renamed over it), so that a node watching
// them never reads half a file; the key goes first, so that a reload
// between the two fails on the mismatch and retries rather than loads.
func writePair(dir, certFile string, certPEM []byte, keyFile string, keyPEM []byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	if err := writeAtomic(keyFile, keyPEM, 0o600); err != nil {
		return err
	}
	return writeAtomic(certFile, certPEM, 0o644)
}

func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("node: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("node: write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("node: write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("node: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	return nil
}

// abs is p made absolute, or p itself if the working directory is unknown.
func abs(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// CertInfo describes one certificate file of a certificates directory.
type CertInfo struct {
	File string
	// Role is "ca", "node" or "client".
	Role string
	// Subject is the Subject CN.
	Subject string
	// Principal is the name peers know the holder by: the node id, the
	// client's principal; empty for the CA.
	Principal string
	// DC is the datacenter a node certificate records.
	DC        string
	Hosts     []string
	Serial    string
	NotBefore time.Time
	NotAfter  time.Time
	// Status is "valid", "expired" or "not yet valid" at the time asked.
	Status string
}

// ListCerts describes the certificates in dir's *.pem files (key files
// are skipped), sorted by file name.
func ListCerts(dir string, now time.Time) ([]CertInfo, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.pem"))
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("node: certificates directory: %w", err)
	}
	sort.Strings(files)
	var out []CertInfo
	var errs []error
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			errs = append(errs, fmt.Errorf("node: %w", err))
			continue
		}
		certs, err := wan.ParseCertificates(b)
		if err != nil {
			continue // a key file, or not a certificate
		}
		c := certs[0]
		info := CertInfo{File: file, Subject: c.Subject.CommonName, Serial: wan.FormatSerial(c.SerialNumber), NotBefore: c.NotBefore, NotAfter: c.NotAfter, Status: "valid"}
		switch {
		case now.After(c.NotAfter):
			info.Status = "expired"
		case now.Before(c.NotBefore):
			info.Status = "not yet valid"
		}
		info.Hosts = append(info.Hosts, c.DNSNames...)
		for _, ip := range c.IPAddresses {
			info.Hosts = append(info.Hosts, ip.String())
		}
		if c.IsCA {
			info.Role = "ca"
		} else if id, err := wan.CertIdentity(c); err != nil {
			info.Role = "unknown"
		} else {
			info.Role, info.Principal, info.DC = string(id.Role), id.Name, wan.NodeDC(c)
		}
		out = append(out, info)
	}
	return out, errors.Join(errs...)
}
