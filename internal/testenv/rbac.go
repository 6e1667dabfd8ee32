package testenv

import (
	"context"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/sluice-dev/sluice/internal/serviceaccount"
)

// The ServiceAccount the tests' controllers act as, and the ClusterRole
// bound to it: the shipped one (config/rbac/role.yaml) under a name of
// the tests', so that installing the chart or the kustomize base on the
// same cluster finds its own names free.
const (
	ControllerNamespace      = "sluice-tests"
	ControllerServiceAccount = "sluice"
	controllerRole           = "sluice-tests-manager"
)

var (
	rbacOnce sync.Once
	rbacErr  error
)

// ControllerConfig is the admin config impersonating the ServiceAccount
// a Sluice controller runs as once installed, bound to exactly the
// ClusterRole Sluice ships (config/rbac/role.yaml, read now): a
// controller of a test that uses it has the permissions a user's has,
// never more, so a rule missing from the shipped RBAC fails the test
// that needs it. The objects are made (or brought up to date) once per
// test process.
func (c *Cluster) ControllerConfig(t testing.TB) *rest.Config {
	t.Helper()
	rbacOnce.Do(func() { rbacErr = c.ensureControllerRBAC() })
	if rbacErr != nil {
		t.Fatalf("the controller's RBAC: %v", rbacErr)
	}
	cfg := rest.CopyConfig(c.Config)
	cfg.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:" + ControllerNamespace + ":" + ControllerServiceAccount,
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + ControllerNamespace, "system:authenticated"},
	}
	return cfg
}

func (c *Cluster) ensureControllerRBAC() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	shipped, err := serviceaccount.ShippedRole(c.Root)
	if err != nil {
		return err
	}
	return serviceaccount.Bind(ctx, c.Client, ControllerNamespace, ControllerServiceAccount, controllerRole, shipped.Rules)
}
