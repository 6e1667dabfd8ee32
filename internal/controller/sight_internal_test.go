package controller

import (
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// An answer, even a refusal, is sight; only an apiserver that cannot
// answer blinds an informer.
func TestUnreachable(t *testing.T) {
	gr := schema.GroupResource{Resource: "deployments"}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, true},
		{fmt.Errorf("list: %w", apierrors.NewServiceUnavailable("starting")), true},
		{apierrors.NewInternalError(errors.New("etcd")), true},
		{apierrors.NewTooManyRequests("slow down", 1), true},
		{apierrors.NewForbidden(gr, "", errors.New("rbac")), false},
		{apierrors.NewNotFound(gr, ""), false},
		{apierrors.NewResourceExpired("too old resource version"), false},
	} {
		if got := unreachable(tc.err); got != tc.want {
			t.Errorf("unreachable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// An informer that stopped while blind (its cache ended) blinds nobody
// once it has not retried for StaleBlind.
func TestSightForgetsAStoppedInformer(t *testing.T) {
	now := time.Unix(1000, 0)
	s := NewSight(func() time.Time { return now })
	s.blind[7] = now
	if got := s.Since(); !got.Equal(now) {
		t.Fatalf("Since() = %v while blind, want now %v", got, now)
	}
	failed := now
	now = now.Add(StaleBlind + time.Second)
	if got := s.Since(); !got.Equal(failed) {
		t.Fatalf("Since() = %v after StaleBlind without a retry, want its last attempt %v", got, failed)
	}
}
