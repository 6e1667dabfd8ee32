package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/cli"
)

// hub tells the open streams which Canaries changed. Each stream keeps a
// set of changed keys and a wake-up of capacity one: a burst of changes
// wakes it once, and it sends each changed Canary once.
type hub struct {
	mu   sync.Mutex
	subs map[*subscriber]struct{}
}

type subscriber struct {
	wake  chan struct{}
	mu    sync.Mutex
	dirty map[string]struct{}
}

func newHub() *hub { return &hub{subs: map[*subscriber]struct{}{}} }

func (h *hub) subscribe() *subscriber {
	s := &subscriber{wake: make(chan struct{}, 1), dirty: map[string]struct{}{}}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	return s
}

func (h *hub) unsubscribe(s *subscriber) {
	h.mu.Lock()
	delete(h.subs, s)
	h.mu.Unlock()
}

// Streams is the number of open streams.
func (s *Server) Streams() int {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	return len(s.hub.subs)
}

func (h *hub) changed(key string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		s.mu.Lock()
		s.dirty[key] = struct{}{}
		s.mu.Unlock()
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

func (s *subscriber) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, 0, len(s.dirty))
	for k := range s.dirty {
		keys = append(keys, k)
	}
	clear(s.dirty)
	slices.Sort(keys)
	return keys
}

// rows lists every Canary in the cache, sorted.
func (s *Server) rows(ctx context.Context) ([]Row, error) {
	var cs v1alpha1.CanaryList
	if err := s.cache.List(ctx, &cs); err != nil {
		return nil, err
	}
	rows := make([]Row, 0, len(cs.Items))
	for i := range cs.Items {
		rows = append(rows, rowOf(&cs.Items[i]))
	}
	slices.SortFunc(rows, func(a, b Row) int {
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	return rows, nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

type apiError struct {
	Error string `json:"error"`
}

func (s *Server) serveList(w http.ResponseWriter, r *http.Request) {
	rows, err := s.rows(r.Context())
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, apiError{err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, rows)
}

func (s *Server) serveDetail(w http.ResponseWriter, r *http.Request) {
	d, err := s.detail(r.Context(), r.PathValue("namespace"), r.PathValue("name"))
	switch {
	case err != nil:
		writeJSON(w, http.StatusInternalServerError, apiError{err.Error()})
	case d == nil:
		writeJSON(w, http.StatusNotFound, apiError{fmt.Sprintf("canary %s/%s not found", r.PathValue("namespace"), r.PathValue("name"))})
	default:
		writeJSON(w, http.StatusOK, d)
	}
}

// Stream messages: "rows" carries the whole list (on connect) or the
// Canaries that changed and the ones gone; "detail" the page's Canary.
type rowsMessage struct {
	Full    bool     `json:"full,omitempty"`
	Rows    []Row    `json:"rows"`
	Removed []string `json:"removed,omitempty"`
}

type detailMessage struct {
	Key    string  `json:"key"`
	Detail *Detail `json:"detail"` // null when the Canary is gone
}

// serveStream is a page's one event stream: the list, and with
// ?canary=<namespace>/<name> that Canary's page, first whole, then each
// change as it reaches the cache.
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	rc := http.NewResponseController(w)
	focus := r.URL.Query().Get("canary")
	sub := s.hub.subscribe() // before the snapshot: nothing between is missed
	defer s.hub.unsubscribe(sub)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	send := func(event string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b); err != nil {
			return err
		}
		return rc.Flush()
	}
	sendDetail := func() error {
		ns, name, _ := strings.Cut(focus, "/")
		d, err := s.detail(ctx, ns, name)
		if err != nil {
			return err
		}
		return send("detail", detailMessage{Key: focus, Detail: d})
	}
	if _, err := fmt.Fprint(w, "retry: 1000\n\n"); err != nil {
		return
	}
	rows, err := s.rows(ctx)
	if err != nil || send("rows", rowsMessage{Full: true, Rows: rows}) != nil {
		return
	}
	if focus != "" && sendDetail() != nil {
		return
	}
	tick := time.NewTicker(s.opts.Keepalive)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": keepalive\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		case <-sub.wake:
			msg := rowsMessage{Rows: []Row{}}
			detail := false
			for _, key := range sub.take() {
				ns, name, _ := strings.Cut(key, "/")
				var c v1alpha1.Canary
				err := s.cache.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &c)
				switch {
				case apierrors.IsNotFound(err):
					msg.Removed = append(msg.Removed, key)
				case err != nil:
					return
				default:
					msg.Rows = append(msg.Rows, rowOf(&c))
				}
				detail = detail || key == focus
			}
			if send("rows", msg) != nil {
				return
			}
			if detail && sendDetail() != nil {
				return
			}
		}
	}
}

// serveAction makes the call the CLI makes for the action, as the user:
// the apiserver's refusal comes back with its message and status.
func (s *Server) serveAction(w http.ResponseWriter, r *http.Request) {
	ns, name, verb := r.PathValue("namespace"), r.PathValue("name"), r.PathValue("action")
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	var (
		says string
		err  error
	)
	if verb == "undo" {
		n, perr := strconv.ParseInt(r.URL.Query().Get("revision"), 10, 64)
		if perr != nil || n < 0 {
			writeJSON(w, http.StatusBadRequest, apiError{"undo needs ?revision=<number> (0: the last Succeeded one)"})
			return
		}
		var done cli.Undone
		done, err = cli.Undo(ctx, s.client, ns, name, n)
		says = done.Message
		if len(done.Missing) > 0 {
			says += "; not restored (no longer kept): " + strings.Join(done.Missing, ", ")
		}
	} else {
		a := cli.Action(verb)
		if !slices.Contains(actions, a) {
			writeJSON(w, http.StatusNotFound, apiError{fmt.Sprintf("no action %q: promote, promote-full, abort, retry, pause, resume or undo", verb)})
			return
		}
		says, err = cli.Act(ctx, s.client, ns, name, a)
	}
	if err != nil {
		code := http.StatusConflict // the action makes no sense in the Canary's state
		var status apierrors.APIStatus
		if errors.As(err, &status) {
			code = int(status.Status().Code)
		}
		writeJSON(w, code, apiError{err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Message string `json:"message"`
	}{says})
}
