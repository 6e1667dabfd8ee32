package playground

import (
	"context"
	"fmt"
	"os"

	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

// The controller of the playground runs as an installed one would: as the
// ServiceAccount sluice in sluice-system, bound to exactly the ClusterRole
// Sluice ships (config/rbac/role.yaml), never as the cluster's admin.
const (
	controllerNamespace = "sluice-system"
	controllerAccount   = "sluice"
	controllerRole      = "sluice-playground-manager"
)

// controllerKubeconfig makes (or brings up to date) the ServiceAccount and
// its binding, asks a token for it (a week: the playground may stay up),
// and writes a kubeconfig with that token to path.
func controllerKubeconfig(ctx context.Context, o Options, cfg *rest.Config, path string) error {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(o.path("config", "rbac", "role.yaml"))
	if err != nil {
		return err
	}
	var shipped rbacv1.ClusterRole
	if err := yaml.UnmarshalStrict(raw, &shipped); err != nil {
		return fmt.Errorf("config/rbac/role.yaml: %w", err)
	}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: controllerNamespace}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("namespace %s: %w", controllerNamespace, err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: controllerAccount, Namespace: controllerNamespace}}
	if _, err := cs.CoreV1().ServiceAccounts(controllerNamespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("serviceaccount %s/%s: %w", controllerNamespace, controllerAccount, err)
	}
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: controllerRole}, Rules: shipped.Rules}
	if _, err := cs.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); apierrors.IsAlreadyExists(err) {
		have, err := cs.RbacV1().ClusterRoles().Get(ctx, controllerRole, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("clusterrole %s: %w", controllerRole, err)
		}
		have.Rules = shipped.Rules
		if _, err := cs.RbacV1().ClusterRoles().Update(ctx, have, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("clusterrole %s: %w", controllerRole, err)
		}
	} else if err != nil {
		return fmt.Errorf("clusterrole %s: %w", controllerRole, err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: controllerRole},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: controllerRole},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: controllerAccount, Namespace: controllerNamespace}},
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("clusterrolebinding %s: %w", controllerRole, err)
	}
	tok, err := cs.CoreV1().ServiceAccounts(controllerNamespace).CreateToken(ctx, controllerAccount, &authv1.TokenRequest{
		Spec: authv1.TokenRequestSpec{ExpirationSeconds: ptr.To(int64(7 * 24 * 3600))}}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("token for %s/%s: %w", controllerNamespace, controllerAccount, err)
	}
	ca := cfg.CAData
	if len(ca) == 0 {
		if ca, err = os.ReadFile(cfg.CAFile); err != nil {
			return err
		}
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["local"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: ca}
	kc.AuthInfos[controllerAccount] = &clientcmdapi.AuthInfo{Token: tok.Status.Token}
	kc.Contexts["sluice"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: controllerAccount, Namespace: controllerNamespace}
	kc.CurrentContext = "sluice"
	return clientcmd.WriteToFile(*kc, path)
}
