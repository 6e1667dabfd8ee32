package convert

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// flaggerProvider is a Flagger AlertProvider in namespace shop.
func flaggerProvider(name, spec string) string {
	return "apiVersion: flagger.app/v1beta1\nkind: AlertProvider\nmetadata:\n  name: " + name + "\n  namespace: shop\nspec:\n" + indent(spec, "  ")
}

// flaggerAlerting is a Flagger Canary with the alerts and webhooks given
// (YAML lists under spec.analysis), and further documents.
func flaggerAlerting(alerts, webhooks string, more ...string) string {
	c := `apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: api, namespace: shop}
spec:
  provider: traefik
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: api}
  service: {port: 80}
  analysis:
    interval: 1m
    stepWeight: 50
`
	if alerts != "" {
		c += "    alerts:\n" + indent(alerts, "      ")
	}
	if webhooks != "" {
		c += "    webhooks:\n" + indent(webhooks, "      ")
	}
	return strings.Join(append([]string{c}, more...), "\n---\n")
}

// Webhook URLs of the sources: credentials, which no output or report may
// show (each holds "secret-part").
const (
	slackURL   = "https://hooks.slack.com/services/T0/B0/secret-part"
	discordURL = "https://discord.com/api/webhooks/42/secret-part"
)

var alertCases = []struct {
	name      string
	in        string
	providers map[string]string // name -> Sluice AlertProvider spec, YAML
	alerts    string            // the Canary's spec.analysis.alerts, YAML; "" for none
	marks     []markWant
}{
	{
		name:      "slack",
		in:        flaggerProvider("team", "type: slack\nchannel: releases\nusername: canary-bot\nsecretRef: {name: team-url}"),
		providers: map[string]string{"team": "{type: slack, channel: releases, username: canary-bot, secretRef: {name: team-url}}"},
		marks: []markWant{
			{"AlertProvider shop/team", "spec.type", Carried, ""},
			{"AlertProvider shop/team", "spec.channel", Carried, ""},
			{"AlertProvider shop/team", "spec.username", Carried, ""},
			{"AlertProvider shop/team", "spec.secretRef", Carried, "a proxy key is not read"},
			{"AlertProvider shop/team", "spec.secretRef", Carried, "token"},
		},
	},
	{
		name:      "msteams: the Secret must hold a Workflows webhook",
		in:        flaggerProvider("teams", "type: msteams\nsecretRef: {name: teams-url}"),
		providers: map[string]string{"teams": "{type: msteams, secretRef: {name: teams-url}}"},
		marks: []markWant{
			{"AlertProvider shop/teams", "spec.type", Translated, "must be a Workflows webhook URL"},
			{"AlertProvider shop/teams", "spec.type", Translated, "Office 365 connector URL"},
		},
	},
	{
		name:      "discord: native embeds; the spec's address and proxy are not written",
		in:        flaggerProvider("oncall", "type: discord\nusername: canary\naddress: "+discordURL+"\nproxy: http://proxy.corp:3128\nsecretRef: {name: oncall-url}"),
		providers: map[string]string{"oncall": "{type: discord, username: canary, secretRef: {name: oncall-url}}"},
		marks: []markWant{
			{"AlertProvider shop/oncall", "spec.type", Translated, "/slack endpoint"},
			{"AlertProvider shop/oncall", "spec.type", Translated, "Discord's own embeds"},
			{"AlertProvider shop/oncall", "spec.address", NotCarried, "Secret's address key"},
			{"AlertProvider shop/oncall", "spec.proxy", NotCarried, "HTTPS_PROXY"},
		},
	},
	{
		name:      "gchat",
		in:        flaggerProvider("chat", "type: gchat\nsecretRef: {name: chat-url}"),
		providers: map[string]string{"chat": "{type: googlechat, secretRef: {name: chat-url}}"},
		marks:     []markWant{{"AlertProvider shop/chat", "spec.type", Translated, "Google Chat"}},
	},
	{
		name: "rocket: not converted",
		in:   flaggerProvider("rc", "type: rocket\nchannel: releases\nsecretRef: {name: rc-url}"),
		marks: []markWant{
			{"AlertProvider shop/rc", "spec", NotCarried, "no rocket type"},
			{"AlertProvider shop/rc", "spec", NotCarried, "type slack with the same Secret"},
			{"AlertProvider shop/rc", "spec", NotCarried, "type webhook"},
		},
	},
	{
		name:  "the URL in the spec only: not converted",
		in:    flaggerProvider("legacy", "type: slack\nchannel: releases\naddress: "+slackURL),
		marks: []markWant{{"AlertProvider shop/legacy", "spec", NotCarried, "create a Secret with key address holding the URL, set spec.secretRef"}},
	},
	{
		name:  "neither an address nor a Secret: not converted",
		in:    flaggerProvider("none", "type: slack"),
		marks: []markWant{{"AlertProvider shop/none", "spec", NotCarried, "neither an address nor a secretRef"}},
	},
	{
		name:      "a channel longer than Sluice takes",
		in:        flaggerProvider("long", "type: slack\nchannel: "+strings.Repeat("c", 81)+"\nsecretRef: {name: long-url}"),
		providers: map[string]string{"long": "{type: slack, secretRef: {name: long-url}}"},
		marks:     []markWant{{"AlertProvider shop/long", "spec.channel", NotCarried, "80 characters"}},
	},
	{
		name: "alerts carried with their severities, the provider alongside",
		in: flaggerAlerting(`- name: all
  providerRef: {name: team}
- name: warnings
  severity: warn
  providerRef: {name: team, namespace: shop}
- name: failures
  severity: error
  providerRef: {name: pager, namespace: ops}
- name: info
  severity: info
  providerRef: {name: team}`, "", flaggerProvider("team", "type: slack\nsecretRef: {name: team-url}")),
		providers: map[string]string{"team": "{type: slack, secretRef: {name: team-url}}"},
		alerts: `
- {name: all, providerRef: {name: team}}
- {name: warnings, severity: warn, providerRef: {name: team, namespace: shop}}
- {name: failures, severity: error, providerRef: {name: pager, namespace: ops}}
- {name: info, severity: info, providerRef: {name: team}}`,
		marks: []markWant{
			{"Canary shop/api", "spec.analysis.alerts[0].name", Carried, ""},
			{"Canary shop/api", "spec.analysis.alerts[0].providerRef.name", Carried, ""},
			{"Canary shop/api", "spec.analysis.alerts[1].severity", Carried, ""},
			{"Canary shop/api", "spec.analysis.alerts[2].severity", Carried, ""},
			{"Canary shop/api", "spec.analysis.alerts[2].providerRef.namespace", Carried, ""},
			{"AlertProvider shop/team", "spec.type", Carried, ""},
		},
	},
	{
		name: "alerts Sluice refuses are left out",
		in: flaggerAlerting(`- name: a
  providerRef: {name: team}
- name: a
  severity: error
  providerRef: {name: pager}
- name: b
  severity: critical
  providerRef: {name: team}
- name: c
- name: `+strings.Repeat("n", 64)+`
  providerRef: {name: team}`, ""),
		alerts: "[{name: a, providerRef: {name: team}}]",
		marks: []markWant{
			{"Canary shop/api", "spec.analysis.alerts[1]", NotCarried, "a second alert named a"},
			{"Canary shop/api", "spec.analysis.alerts[2]", NotCarried, "severity critical"},
			{"Canary shop/api", "spec.analysis.alerts[3]", NotCarried, "providerRef.name"},
			{"Canary shop/api", "spec.analysis.alerts[4]", NotCarried, "63 characters"},
		},
	},
	{
		name:   "at most 10 alerts",
		in:     flaggerAlerting(manyAlerts(11), ""),
		alerts: manyAlerts(10),
		marks:  []markWant{{"Canary shop/api", "spec.analysis.alerts[10]", NotCarried, "at most 10"}},
	},
	{
		name: "a webhook's muteAlert",
		in: flaggerAlerting("", `- {name: quiet, url: "http://tester.shop/", muteAlert: true}
- {name: loud, url: "http://tester.shop/", muteAlert: false}`),
		marks: []markWant{
			{"Canary shop/api", "spec.analysis.webhooks[0].muteAlert", NotCarried, "no per-webhook mute"},
			{"Canary shop/api", "spec.analysis.webhooks[1].muteAlert", Carried, ""},
		},
	},
}

func manyAlerts(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "- {name: a%d, providerRef: {name: team}}\n", i)
	}
	return b.String()
}

// TestFlaggerAlerts converts Flagger AlertProviders and Canary alerts and
// checks the AlertProviders and alerts written, the report entries, that
// no output or report shows a webhook URL of the sources, and that every
// output passes the CRDs' validation offline.
func TestFlaggerAlerts(t *testing.T) {
	for _, tc := range alertCases {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := Decode(strings.NewReader(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			r := Convert(objs, Options{})
			providers := map[string]*v1alpha1.AlertProvider{}
			var canary *v1alpha1.Canary
			for _, o := range r.Outputs {
				switch x := o.Object.(type) {
				case *v1alpha1.AlertProvider:
					providers[x.Name] = x
				case *v1alpha1.Canary:
					canary = x
				}
			}
			if len(providers) != len(tc.providers) {
				t.Errorf("%d AlertProviders written, want %d", len(providers), len(tc.providers))
			}
			for name, want := range tc.providers {
				if p := providers[name]; p == nil {
					t.Errorf("no AlertProvider %s written", name)
				} else {
					sameYAML(t, "AlertProvider "+name+" spec", p.Spec, want)
				}
			}
			if canary != nil {
				var got any = canary.Spec.Analysis.Alerts
				if tc.alerts == "" {
					if len(canary.Spec.Analysis.Alerts) > 0 {
						t.Errorf("alerts written: %+v", got)
					}
				} else {
					sameYAML(t, "Canary spec.analysis.alerts", got, tc.alerts)
				}
			} else if tc.alerts != "" {
				t.Fatal("no Canary written")
			}
			var rep, out bytes.Buffer
			r.Report.Write(&rep, true)
			for _, w := range tc.marks {
				if !hasMark(r.Report, w) {
					t.Errorf("no entry %s %s %s with a note containing %q; the report:\n%s", w.object, w.path, w.disp, w.note, rep.String())
				}
			}
			if err := Render(&out, r); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(out.String()+rep.String(), "secret-part") {
				t.Errorf("a webhook URL of the sources is in the output or the report:\n%s\n%s", out.String(), rep.String())
			}
			for _, f := range lintOutputs(t, r) {
				t.Errorf("lint: %s", f)
			}
		})
	}
}

// TestLinterRefusesAlertProvidersTheCRDRefuses guards TestFlaggerAlerts
// and TestOutputsPassTheLinter: the linter knows AlertProviders and
// refuses those the CRD refuses.
func TestLinterRefusesAlertProvidersTheCRDRefuses(t *testing.T) {
	for _, s := range []v1alpha1.AlertProviderSpec{
		{Type: "rocket"},
		{Type: "gchat"},
		{Type: v1alpha1.AlertSlack, Channel: strings.Repeat("c", 81)},
	} {
		s.SecretRef.Name = "url"
		ap := &v1alpha1.AlertProvider{Spec: s}
		ap.APIVersion, ap.Kind, ap.Name = v1alpha1.GroupVersion.String(), "AlertProvider", "p"
		if errs := lintOutputs(t, Result{Outputs: []Output{{Object: ap, From: "test"}}}); len(errs) == 0 {
			t.Errorf("an AlertProvider %+v passes the linter", s)
		}
	}
}
