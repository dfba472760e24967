// Package helmchart tests the Helm chart in deploy/helm/trustgate (CONTRACT.md §8): it lints the chart
// and renders it in-process with Helm's own action package (what `helm lint` and `helm template` run),
// decodes every rendered object strictly into its Kubernetes API type (unknown or duplicate fields
// fail), and checks the rules the chart promises: N replicas, readiness on /readyz and liveness on
// /healthz, the KEK and the database URL only from existing Secrets, a non-root read-only container
// without capabilities, a PodDisruptionBudget, resource requests and an optional ServiceMonitor.
package helmchart

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	release "helm.sh/helm/v4/pkg/release/v1"
	"helm.sh/helm/v4/pkg/strvals"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

const chartDir = "trustgate"

// kubeVersion is the cluster version rendered for (`helm template --kube-version`): Helm's default
// inside a test binary is v1.20, older than the chart's kubeVersion constraint.
var kubeVersion = func() *common.KubeVersion {
	v, err := common.ParseKubeVersion("v1.33.0")
	if err != nil {
		panic(err)
	}
	return v
}()

// required are the values an operator must give; everything else has a default.
var required = []string{
	"image.repository=registry.example.com/trustgate",
	"publicURL=https://trustgate.example.com",
	"kek.existingSecret=trustgate-kek",
	"database.existingSecret=trustgate-database",
}

// values builds a values map the way `helm --set` does, from the required values and the overrides.
func values(t *testing.T, sets ...string) map[string]any {
	t.Helper()
	v := map[string]any{}
	for _, s := range sets {
		if err := strvals.ParseInto(s, v); err != nil {
			t.Fatalf("--set %s: %v", s, err)
		}
	}
	return v
}

func withRequired(t *testing.T, sets ...string) map[string]any {
	return values(t, append(slices.Clone(required), sets...)...)
}

// without drops one of the required values.
func without(t *testing.T, name string) map[string]any {
	var sets []string
	for _, s := range required {
		if !strings.HasPrefix(s, name+"=") {
			sets = append(sets, s)
		}
	}
	return values(t, sets...)
}

// rendered holds the objects of one `helm template`, each decoded strictly.
type rendered struct {
	deployment     *appsv1.Deployment
	service        *corev1.Service
	serviceAccount *corev1.ServiceAccount
	pdb            *policyv1.PodDisruptionBudget
	serviceMonitor *unstructured.Unstructured
	kinds          []string
	manifest       string
}

// renderChart runs what `helm template` runs: an install in client-only dry-run mode.
func renderChart(vals map[string]any) (*rendered, error) {
	ch, err := loader.Load(chartDir)
	if err != nil {
		return nil, err
	}
	cfg := action.NewConfiguration()
	cfg.SetLogger(slog.NewTextHandler(io.Discard, nil))
	install := action.NewInstall(cfg)
	install.DryRunStrategy = action.DryRunClient
	install.Replace = true
	install.ReleaseName = "tg"
	install.Namespace = "trustgate"
	install.KubeVersion = kubeVersion
	rel, err := install.Run(ch, vals)
	if err != nil {
		return nil, err
	}
	r, ok := rel.(*release.Release)
	if !ok {
		return nil, errors.New("helm returned an unexpected release type")
	}
	return decode(r.Manifest)
}

// strict decodes the Kubernetes built-in kinds the chart may render, rejecting unknown and duplicate
// fields the way `kubectl apply --validate=strict` would.
var strict = func() runtime.Decoder {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{appsv1.AddToScheme, corev1.AddToScheme, policyv1.AddToScheme} {
		if err := add(scheme); err != nil {
			panic(err)
		}
	}
	return serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()
}()

func decode(manifest string) (*rendered, error) {
	out := &rendered{manifest: manifest}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(manifest)))
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		var head struct{ APIVersion, Kind string }
		if err := yaml.Unmarshal(doc, &head); err != nil {
			return nil, err
		}
		out.kinds = append(out.kinds, head.Kind)
		if head.APIVersion == "monitoring.coreos.com/v1" && head.Kind == "ServiceMonitor" {
			u := &unstructured.Unstructured{}
			if err := yaml.Unmarshal(doc, &u.Object); err != nil {
				return nil, err
			}
			out.serviceMonitor = u
			continue
		}
		obj, _, err := strict.Decode(doc, nil, nil)
		if err != nil {
			return nil, errors.New(head.Kind + ": " + err.Error())
		}
		switch o := obj.(type) {
		case *appsv1.Deployment:
			out.deployment = o
		case *corev1.Service:
			out.service = o
		case *corev1.ServiceAccount:
			out.serviceAccount = o
		case *policyv1.PodDisruptionBudget:
			out.pdb = o
		default:
			return nil, errors.New("the chart rendered an object this test does not know: " + head.APIVersion + " " + head.Kind)
		}
	}
	return out, nil
}

func stripComments(doc []byte) []byte {
	var b bytes.Buffer
	for line := range strings.Lines(string(doc)) {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line)
		}
	}
	return b.Bytes()
}

func mustRender(t *testing.T, vals map[string]any) *rendered {
	t.Helper()
	r, err := renderChart(vals)
	if err != nil {
		t.Fatalf("helm template: %v", err)
	}
	if r.deployment == nil || r.service == nil {
		t.Fatalf("helm template rendered %v, want a Deployment and a Service", r.kinds)
	}
	return r
}

func (r *rendered) container(t *testing.T) corev1.Container {
	t.Helper()
	cs := r.deployment.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("%d containers, want 1", len(cs))
	}
	return cs[0]
}

func env(c corev1.Container, name string) (corev1.EnvVar, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e, true
		}
	}
	return corev1.EnvVar{}, false
}

func TestChartLintsCleanly(t *testing.T) {
	lint := action.NewLint()
	lint.Strict = true // warnings fail too
	lint.Namespace = "trustgate"
	lint.KubeVersion = kubeVersion
	for name, vals := range map[string]map[string]any{
		"required values":     withRequired(t),
		"with ServiceMonitor": withRequired(t, "serviceMonitor.enabled=true", "replicaCount=5"),
	} {
		t.Run(name, func(t *testing.T) {
			res := lint.Run([]string{chartDir}, vals)
			if res.TotalChartsLinted != 1 || len(res.Errors) > 0 {
				t.Fatalf("helm lint --strict: %d charts linted, errors %v, messages %v", res.TotalChartsLinted, res.Errors, res.Messages)
			}
		})
	}
	// helm lint renders in "lint mode", where `required` and `fail` only log: the refusals are
	// checked by rendering, in TestChartRefuses.
}

func TestChartDefaults(t *testing.T) {
	r := mustRender(t, withRequired(t))

	slices.Sort(r.kinds)
	if want := []string{"Deployment", "PodDisruptionBudget", "Service", "ServiceAccount"}; !slices.Equal(r.kinds, want) {
		t.Errorf("rendered kinds %v, want %v (no Secret, no ServiceMonitor by default)", r.kinds, want)
	}

	d := r.deployment
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("replicas %v, want 2", d.Spec.Replicas)
	}
	podLabels := d.Spec.Template.Labels
	for k, v := range d.Spec.Selector.MatchLabels {
		if podLabels[k] != v {
			t.Errorf("Deployment selector %s=%s does not match the pod labels %v", k, v, podLabels)
		}
	}
	c := r.container(t)
	if c.Image != "registry.example.com/trustgate:0.1.0" {
		t.Errorf("image %q, want the repository with the chart's appVersion as tag", c.Image)
	}
	if len(c.Command) != 0 || len(c.Args) != 0 {
		t.Errorf("command %v args %v: the image's entrypoint (trustgate serve) should run unchanged", c.Command, c.Args)
	}

	// Probes: readiness on /readyz, liveness on /healthz, both on the container's http port.
	if len(c.Ports) != 1 || c.Ports[0].Name != "http" || c.Ports[0].ContainerPort != 8080 {
		t.Fatalf("container ports %+v, want http 8080", c.Ports)
	}
	for name, probe := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe, "startup": c.StartupProbe} {
		want := map[string]string{"readiness": "/readyz", "liveness": "/healthz", "startup": "/healthz"}[name]
		if probe == nil || probe.HTTPGet == nil {
			t.Errorf("%s probe %+v, want an HTTP GET of %s", name, probe, want)
			continue
		}
		if probe.HTTPGet.Path != want || probe.HTTPGet.Port.String() != "http" {
			t.Errorf("%s probe GET %s on port %s, want %s on http", name, probe.HTTPGet.Path, probe.HTTPGet.Port.String(), want)
		}
	}
	if e, _ := env(c, "TRUSTGATE_LISTEN"); e.Value != ":8080" {
		t.Errorf("TRUSTGATE_LISTEN %q, want :8080 (the probes' port)", e.Value)
	}
	if e, _ := env(c, "TRUSTGATE_PUBLIC_URL"); e.Value != "https://trustgate.example.com" {
		t.Errorf("TRUSTGATE_PUBLIC_URL %q", e.Value)
	}

	// The KEK and the database URL come from the named Secrets, never as values.
	for name, want := range map[string][2]string{
		"TRUSTGATE_KEK":      {"trustgate-kek", "kek"},
		"TRUSTGATE_DATABASE": {"trustgate-database", "url"},
	} {
		e, ok := env(c, name)
		if !ok || e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
			t.Errorf("%s = %+v, want a secretKeyRef and no value", name, e)
			continue
		}
		if ref := e.ValueFrom.SecretKeyRef; ref.Name != want[0] || ref.Key != want[1] || (ref.Optional != nil && *ref.Optional) {
			t.Errorf("%s from Secret %s key %s (optional %v), want %s key %s, not optional", name, ref.Name, ref.Key, ref.Optional, want[0], want[1])
		}
	}
	if _, ok := env(c, "TRUSTGATE_KEK_PREVIOUS"); ok {
		t.Error("TRUSTGATE_KEK_PREVIOUS is set without kek.previous.existingSecret")
	}
	assertNoInlineSecrets(t, r)

	// Security context: non-root, read-only root filesystem, no capabilities, RuntimeDefault seccomp.
	ps := d.Spec.Template.Spec.SecurityContext
	if ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot || ps.RunAsUser == nil || *ps.RunAsUser != 65532 ||
		ps.SeccompProfile == nil || ps.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext %+v, want runAsNonRoot, runAsUser 65532, seccomp RuntimeDefault", ps)
	}
	assertLockedDown(t, c)
	if d.Spec.Template.Spec.AutomountServiceAccountToken == nil || *d.Spec.Template.Spec.AutomountServiceAccountToken {
		t.Error("the pod mounts a service account token; trustgate never calls the Kubernetes API")
	}

	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
		t.Errorf("resource requests %v, want cpu and memory", c.Resources.Requests)
	}

	// The Service reaches the pods on the http port.
	s := r.service
	if len(s.Spec.Ports) != 1 || s.Spec.Ports[0].TargetPort.String() != "http" || s.Spec.Ports[0].Name != "http" {
		t.Errorf("Service ports %+v, want one named http targeting the container's http port", s.Spec.Ports)
	}
	if !maps.Equal(s.Spec.Selector, d.Spec.Selector.MatchLabels) {
		t.Errorf("Service selector %v, want the Deployment's %v", s.Spec.Selector, d.Spec.Selector.MatchLabels)
	}

	// The PodDisruptionBudget covers the same pods and lets one go at a time.
	p := r.pdb
	if p == nil {
		t.Fatal("no PodDisruptionBudget")
	}
	if !maps.Equal(p.Spec.Selector.MatchLabels, d.Spec.Selector.MatchLabels) {
		t.Errorf("PDB selector %v, want the Deployment's %v", p.Spec.Selector.MatchLabels, d.Spec.Selector.MatchLabels)
	}
	if p.Spec.MaxUnavailable == nil || p.Spec.MaxUnavailable.IntValue() != 1 || p.Spec.MinAvailable != nil {
		t.Errorf("PDB maxUnavailable %v minAvailable %v, want maxUnavailable 1", p.Spec.MaxUnavailable, p.Spec.MinAvailable)
	}
}

// assertLockedDown checks the container's security context that the chart sets whatever the values.
func assertLockedDown(t *testing.T, c corev1.Container) {
	t.Helper()
	sc := c.SecurityContext
	if sc == nil {
		t.Fatal("the container has no securityContext")
	}
	checks := map[string]bool{
		"runAsNonRoot":                   sc.RunAsNonRoot != nil && *sc.RunAsNonRoot,
		"readOnlyRootFilesystem":         sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem,
		"allowPrivilegeEscalation false": sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation,
		"privileged false":               sc.Privileged == nil || !*sc.Privileged,
		"capabilities drop ALL":          sc.Capabilities != nil && slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) && len(sc.Capabilities.Add) == 0,
		"seccomp RuntimeDefault":         sc.SeccompProfile != nil && sc.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault,
	}
	for what, ok := range checks {
		if !ok {
			t.Errorf("container securityContext lacks %s: %+v", what, sc)
		}
	}
}

// assertNoInlineSecrets checks that no Secret is rendered and that every variable carrying key
// material or the database URL is a secretKeyRef.
func assertNoInlineSecrets(t *testing.T, r *rendered) {
	t.Helper()
	if slices.Contains(r.kinds, "Secret") {
		t.Error("the chart rendered a Secret; key material must come from existing Secrets")
	}
	for _, e := range r.container(t).Env {
		if strings.Contains(e.Name, "KEK") || strings.Contains(e.Name, "DATABASE") {
			if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
				t.Errorf("%s is not read from a Secret: %+v", e.Name, e)
			}
		}
	}
}

func TestChartValues(t *testing.T) {
	t.Run("replicas, settings and the previous KEK", func(t *testing.T) {
		r := mustRender(t, withRequired(t,
			"replicaCount=5", "containerPort=9090", "audience=https://aud.example.com", "logLevel=debug",
			"rateLimit.client=50", "trustedProxies={10.0.0.0/8,192.168.0.1}", "image.tag=1.2.3",
			"kek.previous.existingSecret=trustgate-kek-old", "database.key=dsn",
			"extraEnv[0].name=TRUSTGATE_SIGNING_KEY_ROTATION", "extraEnv[0].value=24h",
		))
		if got := *r.deployment.Spec.Replicas; got != 5 {
			t.Errorf("replicas %d, want 5", got)
		}
		c := r.container(t)
		want := map[string]string{
			"TRUSTGATE_LISTEN": ":9090", "TRUSTGATE_AUDIENCE": "https://aud.example.com", "TRUSTGATE_LOG_LEVEL": "debug",
			"TRUSTGATE_RATE_LIMIT_CLIENT": "50", "TRUSTGATE_TRUSTED_PROXIES": "10.0.0.0/8,192.168.0.1",
			"TRUSTGATE_SIGNING_KEY_ROTATION": "24h",
		}
		for name, value := range want {
			if e, _ := env(c, name); e.Value != value {
				t.Errorf("%s = %q, want %q", name, e.Value, value)
			}
		}
		if c.Ports[0].ContainerPort != 9090 || c.ReadinessProbe.HTTPGet.Port.String() != "http" {
			t.Errorf("port %d, readiness on %s: want 9090 named http", c.Ports[0].ContainerPort, c.ReadinessProbe.HTTPGet.Port.String())
		}
		if c.Image != "registry.example.com/trustgate:1.2.3" {
			t.Errorf("image %q", c.Image)
		}
		if e, ok := env(c, "TRUSTGATE_KEK_PREVIOUS"); !ok || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil ||
			e.ValueFrom.SecretKeyRef.Name != "trustgate-kek-old" || e.ValueFrom.SecretKeyRef.Key != "kek" {
			t.Errorf("TRUSTGATE_KEK_PREVIOUS = %+v, want Secret trustgate-kek-old key kek", e)
		}
		if e, _ := env(c, "TRUSTGATE_DATABASE"); e.ValueFrom.SecretKeyRef.Key != "dsn" {
			t.Errorf("TRUSTGATE_DATABASE key %q, want dsn", e.ValueFrom.SecretKeyRef.Key)
		}
		assertNoInlineSecrets(t, r)
	})

	t.Run("image digest", func(t *testing.T) {
		digest := "sha256:" + strings.Repeat("ab", 32)
		c := mustRender(t, withRequired(t, "image.digest="+digest)).container(t)
		if c.Image != "registry.example.com/trustgate@"+digest {
			t.Errorf("image %q, want the repository pinned by digest", c.Image)
		}
	})

	t.Run("platform-assigned uid keeps the lock-down", func(t *testing.T) {
		r := mustRender(t, withRequired(t, "securityContext.runAsUser=null", "securityContext.runAsGroup=null", "securityContext.fsGroup=null"))
		ps := r.deployment.Spec.Template.Spec.SecurityContext
		if ps.RunAsUser != nil || ps.RunAsGroup != nil || ps.FSGroup != nil {
			t.Errorf("pod securityContext %+v, want no fixed uid/gid", ps)
		}
		if ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot {
			t.Error("runAsNonRoot dropped with the uid")
		}
		assertLockedDown(t, r.container(t))
	})

	t.Run("PDB with minAvailable", func(t *testing.T) {
		p := mustRender(t, withRequired(t, "podDisruptionBudget.minAvailable=2", "podDisruptionBudget.maxUnavailable=null")).pdb
		if p.Spec.MinAvailable == nil || p.Spec.MinAvailable.IntValue() != 2 || p.Spec.MaxUnavailable != nil {
			t.Errorf("PDB %+v, want minAvailable 2 alone", p.Spec)
		}
	})

	t.Run("PDB off", func(t *testing.T) {
		if r := mustRender(t, withRequired(t, "podDisruptionBudget.enabled=false")); r.pdb != nil {
			t.Error("PodDisruptionBudget rendered with podDisruptionBudget.enabled=false")
		}
	})

	t.Run("ServiceMonitor", func(t *testing.T) {
		r := mustRender(t, withRequired(t, "serviceMonitor.enabled=true", "serviceMonitor.labels.release=prometheus"))
		sm := r.serviceMonitor
		if sm == nil {
			t.Fatalf("no ServiceMonitor in %v", r.kinds)
		}
		if sm.GetAPIVersion() != "monitoring.coreos.com/v1" || sm.GetName() == "" || sm.GetLabels()["release"] != "prometheus" {
			t.Errorf("ServiceMonitor %s %s labels %v", sm.GetAPIVersion(), sm.GetName(), sm.GetLabels())
		}
		sel, found, err := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
		if err != nil || !found || !subset(sel, r.service.Labels) {
			t.Errorf("ServiceMonitor selector %v (found %v, %v) does not select the Service (labels %v)", sel, found, err, r.service.Labels)
		}
		endpoints, found, err := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
		if err != nil || !found || len(endpoints) != 1 {
			t.Fatalf("ServiceMonitor endpoints %v (%v, %v), want one", endpoints, found, err)
		}
		ep, _ := endpoints[0].(map[string]any)
		if ep["port"] != r.service.Spec.Ports[0].Name || ep["path"] != "/metrics" || ep["interval"] == "" {
			t.Errorf("ServiceMonitor endpoint %v, want port %s path /metrics and an interval", ep, r.service.Spec.Ports[0].Name)
		}
		for _, k := range []string{"port", "path", "interval", "scrapeTimeout"} {
			if _, ok := ep[k].(string); !ok {
				t.Errorf("ServiceMonitor endpoint field %s = %v, want a string", k, ep[k])
			}
		}
	})
}

func subset(sub, of map[string]string) bool {
	for k, v := range sub {
		if of[k] != v {
			return false
		}
	}
	return len(sub) > 0
}

// TestChartRefuses covers what must not render: a missing required value or secret material inline.
// Each error must say what to set.
func TestChartRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		vals map[string]any
		want string
	}{
		{"no KEK Secret", without(t, "kek.existingSecret"), "kek.existingSecret is required"},
		{"no database Secret", without(t, "database.existingSecret"), "database.existingSecret is required"},
		{"no image repository", without(t, "image.repository"), "image.repository is required"},
		{"no public URL", without(t, "publicURL"), "publicURL is required"},
		{"public URL without scheme", withRequired(t, "publicURL=trustgate.example.com"), "is not an http(s) URL"},
		{"empty KEK key", withRequired(t, "kek.key="), "kek.key is empty"},
		{"KEK inline through extraEnv", withRequired(t, "extraEnv[0].name=TRUSTGATE_KEK", "extraEnv[0].value=c2VjcmV0"), "extraEnv must not set TRUSTGATE_KEK"},
		{"database URL inline through extraEnv", withRequired(t, "extraEnv[0].name=TRUSTGATE_DATABASE", "extraEnv[0].value=postgres://u:p@h/db"), "extraEnv must not set TRUSTGATE_DATABASE"},
		{"both PDB bounds", withRequired(t, "podDisruptionBudget.minAvailable=1"), "not both"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := renderChart(tc.vals)
			if err == nil {
				t.Fatalf("rendered %v, want an error containing %q", r.kinds, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}
