package client

import (
	"errors"
	"fmt"
	"time"

	"github.com/meridian-kv/meridian/wan"
)

// SetCredentials replaces the client's certificate, CA bundle and
// revocation list at run time: new connections use them, open connections
// stay up unless their node's certificate is now revoked or no longer
// verifies (those are closed). The new certificate must name the same
// principal and role.
func (c *Client) SetCredentials(creds *wan.Credentials) error {
	if _, err := c.dialer.SetCredentials(creds); err != nil {
		return fmt.Errorf("client: %w", err)
	}
	return nil
}

// ReloadCredentials re-reads the TLS files of the client's configuration
// (Config.TLS) and applies them as SetCredentials does; on error the
// client keeps its credentials.
func (c *Client) ReloadCredentials() error {
	if c.cfg.TLS.Cert == "" {
		return errors.New("client: no TLS files to reload: the client was given Config.Credentials; use SetCredentials")
	}
	creds, err := wan.LoadCredentials(c.cfg.TLS, time.Now())
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	return c.SetCredentials(creds)
}
