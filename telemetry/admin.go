package telemetry

import (
	"net/http"
)

// AdminHandler serves the admin port's observability endpoints:
//
//	GET /metrics  metrics (Prometheus exposition; omitted when nil)
//	GET /healthz  200 "ok" when health returns nil, else 503 and the error
//
// A nil health always reports ok. health is called once per request, on the
// request's goroutine; it must be safe for concurrent use and return quickly.
func AdminHandler(metrics http.Handler, health func() error) http.Handler {
	mux := http.NewServeMux()
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if health != nil {
			if err := health(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = w.Write([]byte(err.Error() + "\n"))
				return
			}
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux
}
