package controller_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	"github.com/sluice-dev/sluice/internal/controller"
	"github.com/sluice-dev/sluice/internal/testenv"
)

// cuttable is a TCP proxy in front of the real apiserver whose link can be
// cut (listener and every connection closed, so clients get "connection
// refused") and restored at the same address: an apiserver outage as the
// controller sees one.
type cuttable struct {
	addr, to string
	mu       sync.Mutex
	ln       net.Listener
	conns    map[net.Conn]bool
	// dropping: connections are accepted and closed at once (an apiserver
	// restarting behind a load balancer); client-go retries such a watch
	// inside the call, without an error, for up to ten seconds.
	dropping bool
}

func newCuttable(t *testing.T, to string) *cuttable {
	t.Helper()
	p := &cuttable{to: to, conns: map[net.Conn]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.cut)
	return p
}

func (p *cuttable) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			drop := p.dropping
			p.mu.Unlock()
			if drop {
				_ = in.Close()
				continue
			}
			out, err := net.DialTimeout("tcp", p.to, 5*time.Second)
			if err != nil {
				_ = in.Close()
				continue
			}
			p.mu.Lock()
			p.conns[in], p.conns[out] = true, true
			p.mu.Unlock()
			go func() { _, _ = io.Copy(out, in); _ = out.Close() }()
			go func() { _, _ = io.Copy(in, out); _ = in.Close() }()
		}
	}()
}

func (p *cuttable) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		_ = c.Close()
	}
	clear(p.conns)
}

// drop closes every connection and keeps closing new ones at once.
func (p *cuttable) drop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dropping = true
	for c := range p.conns {
		_ = c.Close()
	}
	clear(p.conns)
}

func (p *cuttable) restore(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	p.dropping = false
	listening := p.ln != nil
	p.mu.Unlock()
	if listening {
		return
	}
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", p.addr, err)
	}
	p.serve(ln)
}

// TestSightSeesAnApiserverOutage: a cache whose informers report to a
// Sight is blind while the apiserver cannot be reached, and sees again
// once its informer has listed or watched after the outage; the time it
// reports is when that happened (the progress deadline starts again from
// it). Two outages: connections refused (the informer's watch fails), and
// connections closed at once, as an apiserver restarting behind a proxy
// does (client-go retries the watch inside the call, which returns no
// error once the link is back: the Sight counts the gap between the end
// of the stream and the new watch).
func TestSightSeesAnApiserverOutage(t *testing.T) {
	t.Run("refused", func(t *testing.T) { sightOutage(t, (*cuttable).cut, 30*time.Second) })
	// Blind well within client-go's ten retries a second apart, after
	// which the informer's next call fails and would blind it anyway.
	t.Run("closed-at-once", func(t *testing.T) { sightOutage(t, (*cuttable).drop, 8*time.Second) })
}

func sightOutage(t *testing.T, outage func(*cuttable), blindWithin time.Duration) {
	c := testenv.Get(t)
	ns := c.Namespace(t)
	u, err := url.Parse(c.Config.Host)
	if err != nil {
		t.Fatalf("apiserver address %q: %v", c.Config.Host, err)
	}
	proxy := newCuttable(t, u.Host)
	cfg := rest.CopyConfig(c.Config)
	cfg.Host = "https://" + proxy.addr

	sight := controller.NewSight(nil)
	cc, err := cache.New(cfg, cache.Options{
		Scheme:            scheme,
		NewInformer:       sight.NewInformer,
		DefaultNamespaces: map[string]cache.Config{ns: {}},
	})
	if err != nil {
		t.Fatalf("cache: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { _ = cc.Start(ctx) }()
	// The first read starts the ConfigMap informer and waits for it.
	testenv.Eventually(t, 30*time.Second, "the cache lists ConfigMaps", func(ctx context.Context) error {
		return cc.List(ctx, &corev1.ConfigMapList{})
	})
	if s := sight.Since(); !s.IsZero() {
		t.Fatalf("Since() = %v before any outage, want zero", s)
	}

	// blind is true when Since answers the time of the call itself.
	blind := func() (bool, time.Time) {
		before := time.Now()
		s := sight.Since()
		return !s.Before(before), s
	}
	cutAt := time.Now()
	outage(proxy)
	testenv.Eventually(t, blindWithin, "blind after the cut", func(context.Context) error {
		if b, s := blind(); !b {
			return fmt.Errorf("Since() = %v: still seeing", s)
		}
		return nil
	})
	// Written during the outage, straight to the apiserver.
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "during-outage", Namespace: ns}}
	if _, err := c.Client.CoreV1().ConfigMaps(ns).Create(context.Background(), cm, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create configmap: %v", err)
	}
	// Still blind a second later: nothing has come back.
	time.Sleep(time.Second) // the outage lasts; no condition to wait for
	if b, s := blind(); !b {
		t.Fatalf("Since() = %v with the apiserver still cut off: want blind", s)
	}

	restoreAt := time.Now()
	proxy.restore(t)
	testenv.Eventually(t, 90*time.Second, "seeing again after the link came back", func(context.Context) error {
		b, s := blind()
		if b {
			return errors.New("still blind")
		}
		if s.Before(restoreAt) || s.Before(cutAt) {
			return fmt.Errorf("Since() = %v, before the link came back at %v", s, restoreAt)
		}
		return nil
	})
	// It sees: the ConfigMap written during the outage is in the cache.
	testenv.Eventually(t, 30*time.Second, "the cache holds what was written during the outage", func(ctx context.Context) error {
		return cc.Get(ctx, types.NamespacedName{Namespace: ns, Name: cm.Name}, &corev1.ConfigMap{})
	})
}
