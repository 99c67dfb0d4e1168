package node

import (
	"io"
	"net/http"
	"testing"
)

// TestProfilingIsOffUnlessConfigured: /debug/pprof/ answers on the admin
// address only with profiling on.
func TestProfilingIsOffUnlessConfigured(t *testing.T) {
	for _, on := range []bool{false, true} {
		n := startSolo(t, func(c *Config) {
			c.Admin = "127.0.0.1:0"
			c.Profiling = on
		})
		for _, path := range []string{"/debug/pprof/", "/debug/pprof/cmdline", "/healthz"} {
			resp, err := http.Get("http://" + n.AdminAddr() + path)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			want := http.StatusOK
			if !on && path != "/healthz" {
				want = http.StatusNotFound
			}
			if resp.StatusCode != want {
				t.Errorf("profiling %v: GET %s answers %d, want %d", on, path, resp.StatusCode, want)
			}
		}
	}
}
