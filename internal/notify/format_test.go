package notify

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json from the current output")

// failedRelease: analysis failed at 20% with two checks out of bounds.
func failedRelease() Message {
	return Message{
		Namespace: "shop",
		Canary:    "checkout",
		Revision:  "7f9c2b1d",
		Phase:     "Failed",
		Weight:    20,
		Severity:  SeverityError,
		Reason:    "AnalysisFailed",
		Text:      "Canary analysis failed 5 times at weight 20%; rolling back to the primary's revision.",
		Checks: []Check{
			{Name: "request-success-rate", Value: "92.41", Message: "below the minimum of 99"},
			{Name: "latency-p99", Value: "812ms", Message: "above the maximum of 500ms"},
		},
		Link: "https://grafana.example.com/d/sluice/canary?var-namespace=shop&var-canary=checkout",
		Time: time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC),
	}
}

// promotion: the release is over; no checks, no link, revision unknown.
func promotion() Message {
	return Message{
		Namespace: "shop",
		Canary:    "checkout",
		Phase:     "Succeeded",
		Weight:    0,
		Severity:  SeverityInfo,
		Reason:    "Promoted",
		Text:      "Promotion completed: the primary runs the new revision.",
		Time:      time.Date(2025, 3, 14, 10, 2, 7, 0, time.FixedZone("CET", 3600)),
	}
}

// stress has texts far over every limit, made of characters that are two
// UTF-16 units (emoji), several bytes (CJK, combining marks), escaped by
// Slack and Google Chat (&, <, >), escaped by JSON (quotes, backslashes,
// U+2028), control characters and a byte that is not UTF-8.
func stress() Message {
	unit := "Ünïcødé 🚀 日本語テキスト e\u0301 & <b>bold</b> \"q\" \\ \u2028 \x01\t@everyone <!here> \xff "
	long := func(n int) string {
		var b strings.Builder
		for utf8.RuneCountInString(b.String()) < n {
			b.WriteString(unit)
		}
		return string([]rune(b.String())[:n])
	}
	m := Message{
		Namespace: long(1000),
		Canary:    long(1000),
		Revision:  long(2000),
		Phase:     long(2000),
		Weight:    100,
		Severity:  SeverityWarn,
		Reason:    long(400),
		Text:      long(10000),
		Link:      "https://example.com/canary?q=" + strings.Repeat("é&<>", 50),
		Time:      time.Date(2025, 12, 31, 23, 59, 59, 0, time.UTC),
	}
	for i := range 30 {
		m.Checks = append(m.Checks, Check{
			Name:    fmt.Sprintf("check-%02d %s", i, long(400)),
			Value:   long(1500),
			Message: long(3000),
		})
	}
	return m
}

// allEscapes is made only of characters Slack and Google Chat escape, so that
// escaping multiplies every length by four or five just at the limits.
func allEscapes() Message {
	m := Message{
		Namespace: "ns", Canary: "c", Severity: SeverityError, Reason: "AnalysisFailed",
		Text: strings.Repeat("<&>", 4000),
		Link: "https://example.com/?a=1&b=<2>",
	}
	for range 12 {
		m.Checks = append(m.Checks, Check{Name: strings.Repeat("&", 300), Value: strings.Repeat("<", 3000), Message: strings.Repeat(">", 3000)})
	}
	return m
}

// astral is made only of two-unit characters.
func astral() Message {
	m := Message{
		Namespace: "ns", Canary: strings.Repeat("🦀", 200), Severity: SeverityInfo,
		Text: strings.Repeat("🚀", 9000),
	}
	for range 25 {
		m.Checks = append(m.Checks, Check{Name: strings.Repeat("🔥", 300), Value: strings.Repeat("😀", 1100)})
	}
	return m
}

var goldenCases = []struct {
	name string
	msg  Message
	opt  Options
}{
	{"failed", failedRelease(), Options{}},
	{"promoted", promotion(), Options{}},
}

func TestRenderGolden(t *testing.T) {
	for _, typ := range Types() {
		for _, c := range goldenCases {
			t.Run(typ+"-"+c.name, func(t *testing.T) {
				out, err := Render(typ, c.msg, c.opt)
				if err != nil {
					t.Fatal(err)
				}
				var pretty bytes.Buffer
				if err := json.Indent(&pretty, out, "", "  "); err != nil {
					t.Fatalf("invalid JSON: %v\n%s", err, out)
				}
				pretty.WriteByte('\n')
				path := filepath.Join("testdata", typ+"-"+c.name+".golden.json")
				if *update {
					if err := os.MkdirAll("testdata", 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run with -update to write it)", err)
				}
				if !bytes.Equal(pretty.Bytes(), want) {
					t.Errorf("%s differs from the output (run with -update to accept):\n%s", path, pretty.Bytes())
				}
				again, _ := Render(typ, c.msg, c.opt)
				if !bytes.Equal(out, again) {
					t.Error("two renders of the same message differ")
				}
			})
		}
	}
}

// ---------------------------------------------------------------------------
// Schema checks. Each payload is decoded generically (no struct of ours) and
// held to what the service documents.

// u16 is a text's length in UTF-16 code units: what JavaScript counts, and
// never less than the number of code points, so a text within a limit by
// this measure is within it however the service counts characters.
func u16(s string) int { return len(utf16.Encode([]rune(s))) }

// doc walks a decoded JSON value and reports failures with their path.
type doc struct {
	t    *testing.T
	path string
	v    any
}

func (d doc) at(key string) doc {
	d.t.Helper()
	o, ok := d.v.(map[string]any)
	if !ok {
		d.t.Errorf("%s: want an object, got %T", d.path, d.v)
		return doc{d.t, d.path + "." + key, nil}
	}
	v, ok := o[key]
	if !ok {
		d.t.Errorf("%s: missing key %q", d.path, key)
	}
	return doc{d.t, d.path + "." + key, v}
}

func (d doc) has(key string) bool {
	o, _ := d.v.(map[string]any)
	_, ok := o[key]
	return ok
}

func (d doc) keys() []string {
	o, _ := d.v.(map[string]any)
	var ks []string
	for k := range o {
		ks = append(ks, k)
	}
	return ks
}

func (d doc) items() []doc {
	d.t.Helper()
	a, ok := d.v.([]any)
	if !ok {
		d.t.Errorf("%s: want an array, got %T", d.path, d.v)
		return nil
	}
	ds := make([]doc, len(a))
	for i, v := range a {
		ds[i] = doc{d.t, fmt.Sprintf("%s[%d]", d.path, i), v}
	}
	return ds
}

func (d doc) str() string {
	d.t.Helper()
	s, ok := d.v.(string)
	if !ok {
		d.t.Errorf("%s: want a string, got %T", d.path, d.v)
	}
	return s
}

// text is a string that is not empty and at most max units long.
func (d doc) text(max int) string {
	d.t.Helper()
	s := d.str()
	if s == "" {
		d.t.Errorf("%s: empty", d.path)
	}
	if n := u16(s); n > max {
		d.t.Errorf("%s: %d characters, the limit is %d", d.path, n, max)
	}
	return s
}

func (d doc) count(min, max int) []doc {
	d.t.Helper()
	items := d.items()
	if len(items) < min || len(items) > max {
		d.t.Errorf("%s: %d items, want %d to %d", d.path, len(items), min, max)
	}
	return items
}

func (d doc) equals(want string) {
	d.t.Helper()
	if s := d.str(); s != want {
		d.t.Errorf("%s = %q, want %q", d.path, s, want)
	}
}

func (d doc) oneOf(allowed ...string) {
	d.t.Helper()
	s := d.str()
	for _, a := range allowed {
		if s == a {
			return
		}
	}
	d.t.Errorf("%s = %q, not one of %q", d.path, s, allowed)
}

// integer is a JSON number without a fraction, as int64.
func (d doc) integer() int64 {
	d.t.Helper()
	n, ok := d.v.(json.Number)
	if !ok {
		d.t.Errorf("%s: want a number, got %T", d.path, d.v)
		return 0
	}
	i, err := n.Int64()
	if err != nil {
		d.t.Errorf("%s: want an integer, got %s", d.path, n)
	}
	return i
}

func decode(t *testing.T, raw []byte) doc {
	t.Helper()
	if !json.Valid(raw) {
		t.Fatalf("invalid JSON:\n%s", raw)
	}
	if !utf8.Valid(raw) {
		t.Error("payload is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return doc{t, "$", v}
}

// escapedOK: in Slack mrkdwn and Google Chat card HTML, every "&" starts one
// of the three entities, and "<" and ">" never appear raw. A cut inside an
// entity would leave a bare "&".
var escapedOK = regexp.MustCompile(`^(?:[^&<>]|&amp;|&lt;|&gt;)*$`)

func checkEscaped(d doc, s string) {
	d.t.Helper()
	if !escapedOK.MatchString(s) {
		d.t.Errorf("%s: unescaped or broken entity in %.80q", d.path, s)
	}
}

// Slack (Block Kit reference; chat.postMessage):
//   - a message has at most 50 blocks;
//   - a header block's text is plain_text of at most 150 characters;
//   - a section's text is at most 3000 characters; a section has at most 10
//     fields of at most 2000 characters each;
//   - a context block has at most 10 elements; a text object is at most 3000;
//   - an actions block has at most 25 elements; a button's text is
//     plain_text of at most 75 characters, its url at most 3000 and its
//     action_id at most 255;
//   - the top-level text (the notification fallback) is cut at 40,000.
func checkSlack(t *testing.T, raw []byte, m Message) {
	d := decode(t, raw)
	d.at("text").text(40000)
	var buttonURL string
	for _, b := range d.at("blocks").count(1, 50) {
		switch typ := b.at("type").str(); typ {
		case "header":
			b.at("text").at("type").equals("plain_text")
			b.at("text").at("text").text(150)
		case "section":
			if !b.has("text") && !b.has("fields") {
				t.Errorf("%s: a section needs text or fields", b.path)
			}
			if b.has("text") {
				b.at("text").at("type").oneOf("mrkdwn", "plain_text")
				checkEscaped(b, b.at("text").at("text").text(3000))
			}
			if b.has("fields") {
				for _, f := range b.at("fields").count(1, 10) {
					f.at("type").oneOf("mrkdwn", "plain_text")
					checkEscaped(f, f.at("text").text(2000))
				}
			}
		case "context":
			for _, e := range b.at("elements").count(1, 10) {
				e.at("type").oneOf("mrkdwn", "plain_text")
				e.at("text").text(3000)
			}
		case "actions":
			for _, e := range b.at("elements").count(1, 25) {
				e.at("type").equals("button")
				e.at("text").at("type").equals("plain_text")
				e.at("text").at("text").text(75)
				buttonURL = e.at("url").text(3000)
				if e.has("action_id") {
					e.at("action_id").text(255)
				}
			}
		default:
			t.Errorf("%s: unexpected block type %q", b.path, typ)
		}
	}
	if m.Link != "" && buttonURL != m.Link {
		t.Errorf("button url = %q, want the link %q", buttonURL, m.Link)
	}
	if m.Link == "" && buttonURL != "" {
		t.Errorf("a button without a link: %q", buttonURL)
	}
}

// Microsoft Teams Workflows webhook with an Adaptive Card:
//   - {"type":"message","attachments":[...]}; the attachment's contentType is
//     exactly application/vnd.microsoft.card.adaptive;
//   - the card: type AdaptiveCard, version "1.4" (what Teams renders);
//   - we send only TextBlock and FactSet elements and Action.OpenUrl actions;
//   - Adaptive Cards 1.4 colors: Default, Dark, Light, Accent, Good, Warning,
//     Attention; sizes Default, Small, Medium, Large, ExtraLarge; weights
//     Default, Lighter, Bolder;
//   - Teams refuses messages over 28 KB.
func checkTeams(t *testing.T, raw []byte, m Message) {
	if len(raw) > 28*1000 {
		t.Errorf("payload is %d bytes, Teams takes at most 28 KB", len(raw))
	}
	d := decode(t, raw)
	d.at("type").equals("message")
	att := d.at("attachments").count(1, 1)
	if len(att) == 0 {
		return
	}
	att[0].at("contentType").equals("application/vnd.microsoft.card.adaptive")
	if cu := att[0].at("contentUrl"); cu.v != nil {
		t.Errorf("%s = %v, want null", cu.path, cu.v)
	}
	card := att[0].at("content")
	card.at("$schema").equals("http://adaptivecards.io/schemas/adaptive-card.json")
	card.at("type").equals("AdaptiveCard")
	card.at("version").equals("1.4")
	for _, e := range card.at("body").count(1, 100) {
		switch typ := e.at("type").str(); typ {
		case "TextBlock":
			e.at("text").text(1 << 20)
			if e.has("color") {
				e.at("color").oneOf("Default", "Dark", "Light", "Accent", "Good", "Warning", "Attention")
			}
			if e.has("size") {
				e.at("size").oneOf("Default", "Small", "Medium", "Large", "ExtraLarge")
			}
			if e.has("weight") {
				e.at("weight").oneOf("Default", "Lighter", "Bolder")
			}
		case "FactSet":
			for _, f := range e.at("facts").count(1, 100) {
				f.at("title").text(1 << 20)
				f.at("value").text(1 << 20)
			}
		default:
			t.Errorf("%s: unknown element type %q", e.path, typ)
		}
	}
	var url string
	if card.has("actions") {
		for _, a := range card.at("actions").count(1, 10) {
			a.at("type").equals("Action.OpenUrl")
			a.at("title").text(1 << 20)
			url = a.at("url").str()
		}
	}
	if url != m.Link {
		t.Errorf("Action.OpenUrl url = %q, want %q", url, m.Link)
	}
}

// Discord (Execute Webhook; Embed Limits):
//   - content at most 2000 characters; at most 10 embeds;
//   - embed title at most 256, description at most 4096;
//   - at most 25 fields; a field's name at most 256 and value at most 1024,
//     both required, so not empty;
//   - title, description, field names and values, footer text and author
//     name together at most 6000 per embed;
//   - color is an integer RGB value, 0 to 0xFFFFFF; timestamp ISO 8601;
//   - username (an override) at most 80;
//   - allowed_mentions.parse empty: the message pings nobody.
func checkDiscord(t *testing.T, raw []byte, m Message, o Options) {
	d := decode(t, raw)
	d.at("content").text(2000)
	if o.Username != "" {
		d.at("username").text(80)
	} else if d.has("username") {
		t.Error("username set without Options.Username")
	}
	if p := d.at("allowed_mentions").at("parse").items(); len(p) != 0 {
		t.Errorf("allowed_mentions.parse = %v, want []", p)
	}
	for _, e := range d.at("embeds").count(1, 10) {
		total := u16(e.at("title").text(256))
		if e.has("description") {
			total += u16(e.at("description").text(4096))
		}
		if e.has("fields") {
			for _, f := range e.at("fields").count(0, 25) {
				total += u16(f.at("name").text(256))
				total += u16(f.at("value").text(1024))
				if _, ok := f.at("inline").v.(bool); !ok {
					t.Errorf("%s.inline: want a bool", f.path)
				}
			}
		}
		if e.has("footer") {
			total += u16(e.at("footer").at("text").text(2048))
		}
		if e.has("author") {
			total += u16(e.at("author").at("name").text(256))
		}
		if total > 6000 {
			t.Errorf("%s: %d characters in all, the limit is 6000", e.path, total)
		}
		if c := e.at("color").integer(); c < 0 || c > 0xFFFFFF {
			t.Errorf("%s.color = %d, want 0 to 0xFFFFFF", e.path, c)
		}
		if e.has("timestamp") {
			if _, err := time.Parse(time.RFC3339, e.at("timestamp").str()); err != nil {
				t.Errorf("%s.timestamp: %v", e.path, err)
			}
		}
		if m.Link != "" {
			e.at("url").equals(m.Link)
		} else if e.has("url") {
			t.Errorf("%s.url set without a link", e.path)
		}
	}
}

// Google Chat incoming webhook (spaces.messages.create; cardsV2):
//   - a message is at most 32,000 bytes, text and cards included;
//   - text is the plain summary; cardsV2[].card has a header and at least
//     one section, each section at least one widget;
//   - a widget is exactly one kind: we send textParagraph, decoratedText
//     (text required) and buttonList (buttons with onClick.openLink.url);
//   - card text is read as HTML, so &, < and > come as entities.
func checkGoogleChat(t *testing.T, raw []byte, m Message) {
	if len(raw) > 32000 {
		t.Errorf("payload is %d bytes, Google Chat takes at most 32,000", len(raw))
	}
	d := decode(t, raw)
	d.at("text").text(4096)
	var url string
	for _, c := range d.at("cardsV2").count(1, 100) {
		c.at("cardId").text(256)
		card := c.at("card")
		card.at("header").at("title").text(1 << 20)
		for _, s := range card.at("sections").count(1, 100) {
			for _, w := range s.at("widgets").count(1, 100) {
				if ks := w.keys(); len(ks) != 1 {
					t.Errorf("%s: want exactly one widget kind, got %v", w.path, ks)
				}
				switch {
				case w.has("textParagraph"):
					checkEscaped(w, w.at("textParagraph").at("text").text(1<<20))
				case w.has("decoratedText"):
					checkEscaped(w, w.at("decoratedText").at("text").text(1<<20))
				case w.has("buttonList"):
					for _, b := range w.at("buttonList").at("buttons").count(1, 10) {
						b.at("text").text(1 << 20)
						url = b.at("onClick").at("openLink").at("url").text(1 << 20)
					}
				default:
					t.Errorf("%s: unknown widget %v", w.path, w.keys())
				}
			}
		}
	}
	if url != m.Link {
		t.Errorf("button url = %q, want %q", url, m.Link)
	}
}

// Sluice's generic webhook: every field, the text untouched, checks an array
// (never null), revision, link and a zero time left out.
func checkWebhook(t *testing.T, raw []byte, m Message) {
	d := decode(t, raw)
	d.at("namespace").equals(strings.ToValidUTF8(m.Namespace, "\uFFFD"))
	d.at("canary").equals(strings.ToValidUTF8(m.Canary, "\uFFFD"))
	d.at("phase").str()
	d.at("severity").equals(m.Severity)
	d.at("reason").str()
	d.at("message").equals(strings.ToValidUTF8(m.Text, "\uFFFD"))
	if w := d.at("weight").integer(); w != int64(m.Weight) {
		t.Errorf("weight = %d, want %d", w, m.Weight)
	}
	if checks := d.at("checks").count(len(m.Checks), len(m.Checks)); len(checks) > 0 {
		checks[0].at("name").str()
		checks[0].at("value").str()
		checks[0].at("message").str()
	}
	for key, val := range map[string]string{"revision": m.Revision, "link": m.Link} {
		if val == "" && d.has(key) {
			t.Errorf("%s present though empty", key)
		}
		if val != "" {
			d.at(key).str()
		}
	}
	switch {
	case m.Time.IsZero() && d.has("time"):
		t.Error("time present though zero")
	case !m.Time.IsZero():
		ts, err := time.Parse(time.RFC3339, d.at("time").str())
		if err != nil || !ts.Equal(m.Time) {
			t.Errorf("time = %v (%v), want %v", ts, err, m.Time)
		}
	}
}

func checkPayload(t *testing.T, typ string, raw []byte, m Message, o Options) {
	t.Helper()
	switch typ {
	case TypeSlack:
		checkSlack(t, raw, m)
	case TypeMSTeams:
		checkTeams(t, raw, m)
	case TypeDiscord:
		checkDiscord(t, raw, m, o)
	case TypeGoogleChat:
		checkGoogleChat(t, raw, m)
	case TypeWebhook:
		checkWebhook(t, raw, m)
	default:
		t.Fatalf("no schema check for %q", typ)
	}
}

func TestRenderSchemaAndLimits(t *testing.T) {
	long := Options{Channel: "#" + strings.Repeat("x", 100), Username: strings.Repeat("ü🤖", 60)}
	cases := []struct {
		name string
		msg  Message
		opt  Options
	}{
		{"failed", failedRelease(), Options{}},
		{"promoted", promotion(), Options{Channel: "#releases", Username: "sluice"}},
		{"stress", stress(), long},
		{"escapes", allEscapes(), Options{}},
		{"astral", astral(), Options{}},
	}
	for _, typ := range Types() {
		for _, c := range cases {
			t.Run(typ+"-"+c.name, func(t *testing.T) {
				raw, err := Render(typ, c.msg, c.opt)
				if err != nil {
					t.Fatal(err)
				}
				checkPayload(t, typ, raw, c.msg, c.opt)
			})
		}
	}
}

// The stress message is cut, not passed through: the long texts end in "…"
// and the checks that did not fit are counted.
func TestRenderStressIsCut(t *testing.T) {
	m := stress()
	for _, typ := range []string{TypeSlack, TypeMSTeams, TypeDiscord, TypeGoogleChat} {
		raw, err := Render(typ, m, Options{})
		if err != nil {
			t.Fatal(err)
		}
		s := string(raw)
		if !strings.Contains(s, "…") {
			t.Errorf("%s: nothing was cut", typ)
		}
		if !regexp.MustCompile(`\d+ more failing checks`).MatchString(s) {
			t.Errorf("%s: the checks left out are not counted", typ)
		}
		if strings.Contains(s, `\u2028`) || strings.Contains(s, `\u0001`) {
			t.Errorf("%s: control or separator characters left in", typ)
		}
	}
	// The generic webhook cuts nothing.
	raw, _ := Render(TypeWebhook, m, Options{})
	var w struct {
		Message string  `json:"message"`
		Checks  []Check `json:"checks"`
	}
	if err := json.Unmarshal(raw, &w); err != nil {
		t.Fatal(err)
	}
	if utf8.RuneCountInString(w.Message) != 10000 || len(w.Checks) != 30 {
		t.Errorf("webhook: message of %d runes, %d checks; want all 10000 and 30", utf8.RuneCountInString(w.Message), len(w.Checks))
	}
}

func TestRenderSlackEscaping(t *testing.T) {
	m := failedRelease()
	m.Text = "<@here> & <script>alert(1)</script>"
	m.Checks = []Check{{Name: "a<b", Value: "1 > 0", Message: "<!channel>"}}
	m.Link = "https://example.com/x?a=1&b=<2>"
	raw, err := Render(TypeSlack, m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Text   string `json:"text"`
		Blocks []struct {
			Type   string `json:"type"`
			Text   *struct{ Text string }
			Fields []struct{ Text string }
			// Elements of the actions block.
			Elements []struct {
				URL string `json:"url"`
			}
		} `json:"blocks"`
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	const want = "&lt;@here&gt; &amp; &lt;script&gt;alert(1)&lt;/script&gt;"
	if !strings.Contains(got.Text, want) {
		t.Errorf("fallback text %q does not contain %q", got.Text, want)
	}
	var section, fields, url string
	for _, b := range got.Blocks {
		switch {
		case b.Type == "section" && b.Text != nil:
			section = b.Text.Text
		case b.Type == "section":
			for _, f := range b.Fields {
				fields += f.Text + "\n"
			}
		case b.Type == "actions":
			url = b.Elements[0].URL
		}
	}
	if section != want {
		t.Errorf("section text = %q, want %q", section, want)
	}
	if !strings.Contains(fields, "*a&lt;b*: 1 &gt; 0 — &lt;!channel&gt;") {
		t.Errorf("check field not escaped:\n%s", fields)
	}
	if url != m.Link {
		t.Errorf("button url = %q, want it unescaped: %q", url, m.Link)
	}
}

func TestRenderUnknownType(t *testing.T) {
	_, err := Render("carrier-pigeon", failedRelease(), Options{})
	if err == nil || !strings.Contains(err.Error(), `"carrier-pigeon"`) {
		t.Fatalf("err = %v, want one naming the type", err)
	}
	if _, err := Render("", failedRelease(), Options{}); err == nil {
		t.Fatal("an empty type rendered")
	}
}

// Options reach Slack (channel, username) and Discord (username) only when
// set.
func TestRenderOptions(t *testing.T) {
	raw, _ := Render(TypeSlack, promotion(), Options{Channel: "#releases", Username: "sluice"})
	if !bytes.Contains(raw, []byte(`"channel":"#releases"`)) || !bytes.Contains(raw, []byte(`"username":"sluice"`)) {
		t.Errorf("slack options missing: %s", raw)
	}
	raw, _ = Render(TypeSlack, promotion(), Options{})
	if bytes.Contains(raw, []byte(`"channel"`)) || bytes.Contains(raw, []byte(`"username"`)) {
		t.Errorf("slack options present though empty: %s", raw)
	}
	raw, _ = Render(TypeDiscord, promotion(), Options{Username: "sluice"})
	if !bytes.Contains(raw, []byte(`"username":"sluice"`)) {
		t.Errorf("discord username missing: %s", raw)
	}
}

func TestRenderClip(t *testing.T) {
	for _, c := range []struct {
		in   string
		max  int
		esc  bool
		want string
	}{
		{"hello", 5, false, "hello"},
		{"hello world", 8, false, "hello w…"},
		{"hello world", 7, false, "hello…"}, // no space before the ellipsis
		{"héllo", 3, false, "hé…"},
		{"🚀🚀🚀", 4, false, "🚀…"}, // an emoji is two units
		{"🚀🚀", 4, false, "🚀🚀"},
		{"abc", 1, false, "…"},
		{"abc", 0, false, ""},
		{"a\x00b\u2028c\xffd", 20, false, "ab\nc\uFFFDd"},
		{"a<b", 10, true, "a&lt;b"},
		{"a&b&c", 9, true, "a&amp;b…"}, // never "a&amp;b&am…"
		{"&&&", 6, true, "&amp;…"},
		{"&&&", 5, true, "…"}, // "&amp;" fits, but not with the ellipsis it needs
		{"&", 5, true, "&amp;"},
	} {
		var got string
		if c.esc {
			got = clipEscaped(c.in, c.max, entity)
		} else {
			got = clip(c.in, c.max)
		}
		if got != c.want {
			t.Errorf("clip(%q, %d, esc=%v) = %q, want %q", c.in, c.max, c.esc, got, c.want)
		}
		if u16(got) > c.max {
			t.Errorf("clip(%q, %d) = %q is %d units", c.in, c.max, got, u16(got))
		}
	}
}
