package serve

import (
	"errors"
	"net/http"
	"path/filepath"
	"time"

	"petbreed/internal/httpjson"
)

// The original project's endpoints, under /api, done right: the image type
// is read from the bytes, sizes are the true ones, errors have their status.

// handleIndex serves the placeholder page (web/index.html) when no web
// page is mounted.
func (s *Server) handleIndex(w http.ResponseWriter, r *http.Request) {
	b, err := webFS.ReadFile("web/index.html")
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(b)
}

func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openapiJSON)
}

type healthAnswer struct {
	Status          string       `json:"status"` // healthy, loading, stopping
	Ready           bool         `json:"ready"`
	Model           *ModelInfo   `json:"model,omitempty"`
	UptimeSeconds   float64      `json:"uptime_seconds"`
	LastReloadError *reloadError `json:"last_reload_error,omitempty"`
	// Models lists every configured model: its state, version and weight;
	// Split is the traffic split (model, the first one, is kept for the
	// clients of one model).
	Models []ModelState `json:"models"`
	Split  SplitState   `json:"split"`
	// Feedback says whether POST /api/feedback records anything (the
	// server keeps a prediction log).
	Feedback bool `json:"feedback"`
}

// modelStates describes every configured model; public cuts the paths.
func (s *Server) modelStates(admin bool) []ModelState {
	sp := s.split.Load()
	total := 0.0
	for _, w := range sp.weights {
		total += w
	}
	out := make([]ModelState, 0, len(s.slots))
	for i, sl := range s.slots {
		st := ModelState{Name: sl.label(), Shadow: sl.shadow, Weight: sp.weights[i], LastReloadError: sl.lastErr.Load()}
		if total > 0 {
			st.Share = sp.weights[i] / total
		}
		if m := sl.current(); m != nil {
			st.Name, st.State = m.desc.Name, "ready"
			info := m.info()
			if !admin {
				info = info.public()
			}
			st.Model = &info
		} else if st.LastReloadError != nil {
			st.State = "failed"
		} else {
			st.State = "loading"
		}
		if st.LastReloadError != nil && !admin {
			e := *st.LastReloadError
			e.Message = redactPaths(e.Message)
			st.LastReloadError = &e
		}
		if !admin && st.Model == nil && !inStore(sl.spec.URI) && sl.spec.Name == "" {
			st.Name = filepath.Base(sl.spec.URI)
		}
		out = append(out, st)
	}
	return out
}

// handleHealth answers the server's status. The model's file and URI
// paths, and the paths in a reload error, are for the admin (a request with
// the admin token) and the log only: other clients see the model's name,
// version, file name and sha256 prefix, and the error with each path cut
// to its base name.
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	a := healthAnswer{UptimeSeconds: time.Since(s.started).Seconds(), LastReloadError: s.slots[0].lastErr.Load()}
	admin := s.isAdmin(r)
	a.Models = s.modelStates(admin)
	a.Split = s.splitState()
	a.Feedback = s.cfg.PredictionLog != nil
	m := s.current()
	if m != nil {
		info := m.info()
		if !admin {
			info = info.public()
		}
		a.Model = &info
	}
	if a.LastReloadError != nil && !admin {
		e := *a.LastReloadError
		e.Message = redactPaths(e.Message)
		a.LastReloadError = &e
	}
	status := http.StatusOK
	switch {
	case s.draining.Load():
		a.Status, status = "stopping", http.StatusServiceUnavailable
	case !s.Ready():
		a.Status, status = "loading", http.StatusServiceUnavailable
	default:
		a.Status, a.Ready = "healthy", true
	}
	if status != http.StatusOK {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, status, a)
}

// handleReload reloads the models, or the one ?model=NAME names (POST
// /admin/reload, Bearer token).
func (s *Server) handleReload(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	var res ReloadResult
	var err error
	if name := r.URL.Query().Get("model"); name != "" {
		if res, err = s.ReloadModel(name); err != nil {
			var ae *apiError
			if errors.As(err, &ae) {
				writeError(w, err)
				return
			}
		}
	} else {
		res, err = s.Reload()
	}
	if err != nil {
		status := http.StatusInternalServerError
		var le errLoad
		if errors.As(err, &le) {
			status = http.StatusUnprocessableEntity
		}
		a := struct {
			Error  string     `json:"error"`
			Detail string     `json:"detail"`
			Model  *ModelInfo `json:"serving,omitempty"`
		}{Error: "reload failed: the previous model goes on serving", Detail: err.Error()}
		if m := s.current(); m != nil {
			info := m.info()
			a.Model = &info
		}
		writeJSON(w, status, a)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Status string `json:"status"`
		ReloadResult
	}{"reloaded", res})
}

// isAdmin reports whether r bears the admin token (never, when none is
// configured), without answering.
func (s *Server) isAdmin(r *http.Request) bool { return httpjson.Bearer(r, s.cfg.AdminToken) }

// authorized checks the admin token; without one configured the admin
// endpoints do not exist (404).
func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	if s.cfg.AdminToken == "" {
		writeError(w, errorf(http.StatusNotFound, "not found", "the admin endpoints are off (no admin token configured)"))
		return false
	}
	if !s.isAdmin(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="petbreed admin"`)
		writeError(w, errorf(http.StatusUnauthorized, "unauthorized", "an admin token is needed: Authorization: Bearer TOKEN"))
		return false
	}
	return true
}
