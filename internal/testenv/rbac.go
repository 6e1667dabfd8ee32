package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/yaml"
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

// ShippedClusterRole reads the ClusterRole Sluice ships.
func (c *Cluster) ShippedClusterRole() (*rbacv1.ClusterRole, error) {
	path := filepath.Join(c.Root, "config", "rbac", "role.yaml")
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var role rbacv1.ClusterRole
	if err := yaml.UnmarshalStrict(raw, &role); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &role, nil
}

func (c *Cluster) ensureControllerRBAC() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	shipped, err := c.ShippedClusterRole()
	if err != nil {
		return err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ControllerNamespace}}
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("namespace %s: %w", ControllerNamespace, err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: ControllerServiceAccount, Namespace: ControllerNamespace}}
	if _, err := c.Client.CoreV1().ServiceAccounts(ControllerNamespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("serviceaccount %s/%s: %w", ControllerNamespace, ControllerServiceAccount, err)
	}
	roles := c.Client.RbacV1().ClusterRoles()
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		have, err := roles.Get(ctx, controllerRole, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = roles.Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: controllerRole}, Rules: shipped.Rules}, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				return apierrors.NewConflict(rbacv1.Resource("clusterroles"), controllerRole, err)
			}
			return err
		}
		if err != nil {
			return err
		}
		have.Rules = shipped.Rules
		_, err = roles.Update(ctx, have, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("clusterrole %s: %w", controllerRole, err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: controllerRole},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: controllerRole},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: ControllerServiceAccount, Namespace: ControllerNamespace}},
	}
	if _, err := c.Client.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("clusterrolebinding %s: %w", controllerRole, err)
	}
	return nil
}
