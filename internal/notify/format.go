// Package notify tells people about a Canary's release in their chat.
//
// This file holds the pure part: Render turns one Message into the JSON body
// a provider's incoming webhook takes. It does no I/O, keeps no state and
// gives the same bytes for the same input (every payload is built from
// structs, never maps), so its output can be compared with golden files.
//
// Chat services refuse or silently cut messages whose fields are too long.
// Every text Render puts in a field with a documented limit is shortened to
// fit, on a rune boundary, ending in "…"; where a service caps the whole
// message (Discord's 6000 characters per embed, Teams' and Google Chat's
// payload sizes) failing checks beyond the room left are summed up in one
// "N more failing checks" entry.
package notify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// Message is one notification about a Canary.
type Message struct {
	Namespace, Canary string
	Revision          string  // canary revision hash, may be empty
	Phase             string  // e.g. Progressing, Failed, Succeeded
	Weight            int32   // canary weight percent
	Severity          string  // SeverityInfo, SeverityWarn or SeverityError
	Reason            string  // the event's reason, e.g. AnalysisFailed, WeightSet, Promoted
	Text              string  // the event's message
	Checks            []Check // the checks that failed in the last round, may be empty
	Link              string  // a URL (already rendered), may be empty
	Time              time.Time
}

// Check is one check that failed in the last analysis round.
type Check struct{ Name, Value, Message string }

// Severities (the API's alert severities). Anything else is rendered like
// SeverityInfo, with its own word.
const (
	SeverityInfo  = v1alpha1.SeverityInfo
	SeverityWarn  = v1alpha1.SeverityWarn
	SeverityError = v1alpha1.SeverityError
)

// Provider types Render knows (the API's AlertProvider types).
const (
	TypeSlack      = v1alpha1.AlertSlack
	TypeMSTeams    = v1alpha1.AlertMSTeams
	TypeDiscord    = v1alpha1.AlertDiscord
	TypeGoogleChat = v1alpha1.AlertGoogleChat
	TypeWebhook    = v1alpha1.AlertWebhook
)

// Types lists the provider types Render knows, in a stable order.
func Types() []string {
	return []string{TypeSlack, TypeMSTeams, TypeDiscord, TypeGoogleChat, TypeWebhook}
}

// Options are per-provider settings. Only Slack's legacy incoming webhooks
// honour Channel and Username (apps' webhooks post where they were created);
// Discord honours Username. Empty means omitted.
type Options struct{ Channel, Username string }

// Render builds the JSON body the incoming webhook of provider type typ takes.
func Render(typ string, m Message, o Options) ([]byte, error) {
	var v any
	switch typ {
	case TypeSlack:
		v = slackPayload(m, o)
	case TypeMSTeams:
		v = teamsPayload(m)
	case TypeDiscord:
		v = discordPayload(m, o)
	case TypeGoogleChat:
		v = googleChatPayload(m)
	case TypeWebhook:
		v = webhookPayload(m)
	default:
		return nil, fmt.Errorf("notify: unknown provider type %q (known: %s)", typ, strings.Join(Types(), ", "))
	}
	return encodePayload(v)
}

// encodePayload marshals v without encoding/json's HTML escaping: "<" stays "<"
// rather than "\u003c", which every receiver reads the same and people can
// read in the golden files.
func encodePayload(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("notify: encode payload: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// ---------------------------------------------------------------------------
// Text shared by the chat formats.

// sevLevel sorts a severity into one of three looks.
type sevLevel int

const (
	sevInfo sevLevel = iota
	sevWarn
	sevError
)

func levelOf(sev string) sevLevel {
	switch sev {
	case SeverityError:
		return sevError
	case SeverityWarn:
		return sevWarn
	}
	return sevInfo
}

// severityWord is what a message says its severity is.
func severityWord(sev string) string {
	if sev == "" {
		return SeverityInfo
	}
	return sev
}

// name is namespace/canary, or the canary alone without a namespace.
func (m Message) name() string {
	if m.Namespace == "" {
		return m.Canary
	}
	return m.Namespace + "/" + m.Canary
}

// headline is the one line that says what happened:
// "shop/checkout Failed (AnalysisFailed)".
func (m Message) headline() string {
	h := m.name()
	if m.Phase != "" {
		h += " " + m.Phase
	}
	if m.Reason != "" {
		h += " (" + m.Reason + ")"
	}
	return h
}

// fact is one label/value pair shown in every chat format.
type fact struct{ label, value string }

// facts are the Canary's state: name, phase, weight and revision (the last
// only when known, phase only when set).
func (m Message) facts() []fact {
	fs := []fact{{"Canary", m.name()}}
	if m.Phase != "" {
		fs = append(fs, fact{"Phase", m.Phase})
	}
	fs = append(fs, fact{"Weight", strconv.Itoa(int(m.Weight)) + "%"})
	if m.Revision != "" {
		fs = append(fs, fact{"Revision", m.Revision})
	}
	return fs
}

// checkName never returns an empty string: several services refuse empty
// labels.
func checkName(c Check) string {
	if strings.TrimSpace(c.Name) == "" {
		return "(unnamed check)"
	}
	return c.Name
}

// checkDetail is "value — message", either part left out when empty, and
// never empty itself.
func checkDetail(c Check) string {
	switch {
	case c.Value != "" && c.Message != "":
		return c.Value + " — " + c.Message
	case c.Value != "":
		return c.Value
	case c.Message != "":
		return c.Message
	}
	return "failed"
}

// moreChecks sums up the failing checks left out.
func moreChecks(n int) string {
	if n == 1 {
		return "1 more failing check"
	}
	return strconv.Itoa(n) + " more failing checks"
}

// timeString is t in UTC as RFC 3339, or "" for the zero time.
func timeString(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// linkText labels every button and link action.
const linkText = "View details"

// ---------------------------------------------------------------------------
// Fitting text into limits.

// ellipsis ends every text that was cut to fit.
const ellipsis = "…"

// units is the length of s in UTF-16 code units. The services count
// "characters" in different ways (code points, UTF-16 units); a string's
// UTF-16 length is never less than its number of code points, so text cut to
// fit in UTF-16 units fits either way.
func units(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// sanitize makes s valid UTF-8 (bad bytes become U+FFFD, as encoding/json
// would do anyway), drops control characters other than newline and tab, and
// turns the line and paragraph separators, which encoding/json always writes
// as six-byte escapes, into newlines. Chat texts only; the generic webhook
// passes text through untouched.
func sanitize(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t':
			return r
		case r == '\u2028' || r == '\u2029':
			return '\n'
		case unicode.IsControl(r):
			return -1
		}
		return r
	}, s)
}

// clip returns s sanitized and, when it is longer than max UTF-16 units,
// cut on a rune boundary and ended with "…" so that the whole is max units
// at most.
func clip(s string, max int) string { return clipEscaped(s, max, nil) }

// clipEscaped is clip for a format in which some characters must be written
// as entities: esc (when not nil) gives the escaped form of a rune or "" to
// keep it. The limit applies to the escaped text, and a cut never falls
// inside an entity.
func clipEscaped(s string, max int, esc func(rune) string) string {
	if max <= 0 {
		return ""
	}
	s = sanitize(s)
	var b strings.Builder
	n := 0    // units written to b
	keep := 0 // bytes of b that still leave room for the ellipsis
	for _, r := range s {
		piece := string(r)
		if esc != nil {
			if e := esc(r); e != "" {
				piece = e
			}
		}
		w := units(piece)
		if n+w > max {
			cut := strings.TrimRightFunc(b.String()[:keep], unicode.IsSpace)
			return cut + ellipsis
		}
		b.WriteString(piece)
		n += w
		if n <= max-units(ellipsis) {
			keep = b.Len()
		}
	}
	return b.String()
}

// entity escapes the three characters that Slack's mrkdwn and Google Chat's
// card HTML give a meaning to: "&", "<" and ">". Slack reads "<...>" as a
// link, a mention or a command such as <!here>.
func entity(r rune) string {
	switch r {
	case '&':
		return "&amp;"
	case '<':
		return "&lt;"
	case '>':
		return "&gt;"
	}
	return ""
}

// ---------------------------------------------------------------------------
// Slack: an incoming webhook message with Block Kit blocks.

// Slack's documented limits (Block Kit reference and chat.postMessage).
const (
	slackHeaderMax = 150  // header block text (the message has 5 blocks of the 50 allowed)
	slackTextMax   = 3000 // section text; any text object, such as a context element
	slackFieldsMax = 10   // fields of a section
	slackFieldMax  = 2000 // each field's text
	slackURLMax    = 3000 // a button's url (its text, "View details", is far below 75)
	// slackFallbackMax is ours: Slack cuts a message's top-level text at
	// 40,000 characters, but the fallback is a notification line and need
	// not be long.
	slackFallbackMax = 3000
)

type slackMessage struct {
	Channel  string       `json:"channel,omitempty"`
	Username string       `json:"username,omitempty"`
	Text     string       `json:"text"`
	Blocks   []slackBlock `json:"blocks"`
}

type slackBlock struct {
	Type     string      `json:"type"`
	Text     *slackText  `json:"text,omitempty"`
	Fields   []slackText `json:"fields,omitempty"`
	Elements []any       `json:"elements,omitempty"` // slackText or slackButton
}

type slackText struct {
	Type  string `json:"type"` // plain_text or mrkdwn
	Text  string `json:"text"`
	Emoji bool   `json:"emoji,omitempty"` // plain_text only
}

type slackButton struct {
	Type     string    `json:"type"` // button
	Text     slackText `json:"text"`
	URL      string    `json:"url"`
	ActionID string    `json:"action_id"`
}

// slackEmoji prefixes the header: Block Kit has no colour bar.
var slackEmoji = [...]string{
	sevInfo:  ":white_check_mark:",
	sevWarn:  ":warning:",
	sevError: ":rotating_light:",
}

// mrkdwn escapes s for Slack's mrkdwn and fits it in max.
func mrkdwn(s string, max int) string { return clipEscaped(s, max, entity) }

func slackPayload(m Message, o Options) slackMessage {
	lv := levelOf(m.Severity)
	fallback := "[" + severityWord(m.Severity) + "] " + m.headline()
	if m.Text != "" {
		fallback += ": " + m.Text
	}
	msg := slackMessage{
		Channel:  o.Channel,
		Username: o.Username,
		Text:     mrkdwn(fallback, slackFallbackMax),
	}
	msg.Blocks = append(msg.Blocks, slackBlock{
		Type: "header",
		Text: &slackText{Type: "plain_text", Text: clip(slackEmoji[lv]+" "+m.headline(), slackHeaderMax), Emoji: true},
	})
	if m.Text != "" { // a section's text may not be empty
		msg.Blocks = append(msg.Blocks, slackBlock{
			Type: "section",
			Text: &slackText{Type: "mrkdwn", Text: mrkdwn(m.Text, slackTextMax)},
		})
	}

	var fields []slackText
	for _, f := range m.facts() {
		fields = append(fields, slackText{Type: "mrkdwn", Text: "*" + f.label + "*\n" + mrkdwn(f.value, slackFieldMax-units(f.label)-3)})
	}
	shown := fitCount(len(m.Checks), slackFieldsMax-len(fields))
	for _, c := range m.Checks[:shown] {
		name := mrkdwn(checkName(c), 200)
		fields = append(fields, slackText{Type: "mrkdwn", Text: "*" + name + "*: " + mrkdwn(checkDetail(c), slackFieldMax-units(name)-4)})
	}
	if rest := len(m.Checks) - shown; rest > 0 {
		fields = append(fields, slackText{Type: "mrkdwn", Text: "_" + moreChecks(rest) + "_"})
	}
	msg.Blocks = append(msg.Blocks, slackBlock{Type: "section", Fields: fields})

	ctx := "Severity: *" + mrkdwn(severityWord(m.Severity), 32) + "*"
	if m.Reason != "" {
		ctx += " · Reason: " + mrkdwn(m.Reason, 256)
	}
	if ts := timeString(m.Time); ts != "" {
		// Slack shows <!date^unix^tokens|fallback> in the reader's time zone.
		ctx += " · <!date^" + strconv.FormatInt(m.Time.Unix(), 10) + "^{date_short_pretty} {time_secs}|" + ts + ">"
	}
	msg.Blocks = append(msg.Blocks, slackBlock{
		Type:     "context",
		Elements: []any{slackText{Type: "mrkdwn", Text: ctx}},
	})

	// A URL cut short would lead somewhere else: a link too long for a
	// button is left out instead.
	if m.Link != "" && len(m.Link) <= slackURLMax {
		msg.Blocks = append(msg.Blocks, slackBlock{
			Type: "actions",
			Elements: []any{slackButton{
				Type:     "button",
				Text:     slackText{Type: "plain_text", Text: linkText, Emoji: true},
				URL:      m.Link,
				ActionID: "sluice-open-link",
			}},
		})
	}
	return msg
}

// fitCount is how many of n items to show in slots places: all when they
// fit, else one less than the places, the last one saying how many more.
func fitCount(n, slots int) int {
	switch {
	case n <= slots:
		return n
	case slots <= 1:
		return 0
	}
	return slots - 1
}

// ---------------------------------------------------------------------------
// Microsoft Teams: an Adaptive Card posted to a Workflows ("When a Teams
// webhook request is received") webhook.

const (
	teamsContentType = "application/vnd.microsoft.card.adaptive"
	teamsCardSchema  = "http://adaptivecards.io/schemas/adaptive-card.json"
	teamsCardVersion = "1.4"
)

// Limits of our own for the card formats (Teams, Google Chat), which
// document few per-field limits but cap the whole message: 28 KB on Teams,
// 32,000 bytes on Google Chat. A character costs at most three bytes once
// sanitized and JSON-encoded, so the worst card stays near 24 KB.
const (
	cardTitleMax  = 200  // title line
	cardTextMax   = 3000 // the event's message
	cardLabelMax  = 64   // a fact's or a check's label
	cardValueMax  = 300  // a fact's or a check's value
	cardChecksMax = 8    // checks shown before "N more failing checks"
)

type teamsMessage struct {
	Type        string            `json:"type"` // message
	Attachments []teamsAttachment `json:"attachments"`
}

type teamsAttachment struct {
	ContentType string       `json:"contentType"`
	ContentURL  *string      `json:"contentUrl"` // always null
	Content     adaptiveCard `json:"content"`
}

type adaptiveCard struct {
	Schema  string        `json:"$schema"`
	Type    string        `json:"type"` // AdaptiveCard
	Version string        `json:"version"`
	Body    []cardElement `json:"body"`
	Actions []cardAction  `json:"actions,omitempty"`
}

// cardElement is a TextBlock or a FactSet.
type cardElement struct {
	Type   string     `json:"type"`
	Text   string     `json:"text,omitempty"`
	Size   string     `json:"size,omitempty"`
	Weight string     `json:"weight,omitempty"`
	Color  string     `json:"color,omitempty"`
	Wrap   bool       `json:"wrap,omitempty"`
	Facts  []cardFact `json:"facts,omitempty"`
}

type cardFact struct {
	Title string `json:"title"`
	Value string `json:"value"`
}

type cardAction struct {
	Type  string `json:"type"` // Action.OpenUrl
	Title string `json:"title"`
	URL   string `json:"url"`
}

// teamsColor is one of Adaptive Cards 1.4's text colours.
var teamsColor = [...]string{
	sevInfo:  "Good",
	sevWarn:  "Warning",
	sevError: "Attention",
}

func teamsPayload(m Message) teamsMessage {
	body := []cardElement{{
		Type:   "TextBlock",
		Text:   clip(m.headline(), cardTitleMax),
		Size:   "Large",
		Weight: "Bolder",
		Color:  teamsColor[levelOf(m.Severity)],
		Wrap:   true,
	}}
	if m.Text != "" {
		body = append(body, cardElement{Type: "TextBlock", Text: clip(m.Text, cardTextMax), Wrap: true})
	}
	var facts []cardFact
	for _, f := range m.facts() {
		facts = append(facts, cardFact{Title: f.label, Value: clip(f.value, cardValueMax)})
	}
	shown := min(len(m.Checks), cardChecksMax)
	for _, c := range m.Checks[:shown] {
		facts = append(facts, cardFact{Title: clip(checkName(c), cardLabelMax), Value: clip(checkDetail(c), cardValueMax)})
	}
	if rest := len(m.Checks) - shown; rest > 0 {
		facts = append(facts, cardFact{Title: "More", Value: moreChecks(rest)})
	}
	body = append(body, cardElement{Type: "FactSet", Facts: facts})

	card := adaptiveCard{Schema: teamsCardSchema, Type: "AdaptiveCard", Version: teamsCardVersion, Body: body}
	if m.Link != "" {
		card.Actions = []cardAction{{Type: "Action.OpenUrl", Title: linkText, URL: m.Link}}
	}
	return teamsMessage{
		Type:        "message",
		Attachments: []teamsAttachment{{ContentType: teamsContentType, Content: card}},
	}
}

// ---------------------------------------------------------------------------
// Discord: an execute-webhook body with one embed.

// Discord's documented limits (Execute Webhook, Embed Limits).
const (
	discordUsernameMax   = 80   // webhook username override
	discordContentMax    = 2000 // message content
	discordTitleMax      = 256  // embed title (the message has 1 embed of the 10 allowed)
	discordDescMax       = 4096 // embed description
	discordFieldsMax     = 25   // fields per embed
	discordFieldNameMax  = 256  // field name
	discordFieldValueMax = 1024 // field value
	discordEmbedTotalMax = 6000 // title, description, field names and values, footer and author together
	// Ours, so that the title, description and the Canary's facts never
	// take all of the 6000 and leave room for checks.
	discordDescOurs      = 3000
	discordFactValueOurs = 320
	discordMoreReserve   = 64 // room kept for the "more" field
)

type discordMessage struct {
	Username        string          `json:"username,omitempty"`
	Content         string          `json:"content"`
	Embeds          []discordEmbed  `json:"embeds"`
	AllowedMentions discordMentions `json:"allowed_mentions"`
}

// discordMentions with an empty Parse lets no text in the message ping
// anyone, not even @everyone in an event's message.
type discordMentions struct {
	Parse []string `json:"parse"`
}

type discordEmbed struct {
	Title       string         `json:"title"`
	Description string         `json:"description,omitempty"`
	URL         string         `json:"url,omitempty"`
	Color       int            `json:"color"`
	Fields      []discordField `json:"fields,omitempty"`
	Timestamp   string         `json:"timestamp,omitempty"`
}

type discordField struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Inline bool   `json:"inline"`
}

// discordColor: green, amber, red.
var discordColor = [...]int{
	sevInfo:  0x2EB67D,
	sevWarn:  0xECB22E,
	sevError: 0xE01E5A,
}

// discordEmoji leads the content line (the API does not expand :shortcodes:).
var discordEmoji = [...]string{
	sevInfo:  "✅",
	sevWarn:  "⚠️",
	sevError: "🚨",
}

func discordPayload(m Message, o Options) discordMessage {
	lv := levelOf(m.Severity)
	e := discordEmbed{
		Title:     clip(m.headline(), discordTitleMax),
		URL:       m.Link,
		Color:     discordColor[lv],
		Timestamp: timeString(m.Time),
	}
	used := units(e.Title)
	for _, f := range m.facts() {
		fd := discordField{Name: f.label, Value: clip(f.value, discordFactValueOurs), Inline: true}
		e.Fields = append(e.Fields, fd)
		used += units(fd.Name) + units(fd.Value)
	}
	// The description takes what is left, up to our share of it.
	e.Description = clip(m.Text, min(discordDescOurs, discordEmbedTotalMax-used-discordMoreReserve))
	used += units(e.Description)
	for i, c := range m.Checks {
		fd := discordField{Name: clip(checkName(c), discordFieldNameMax), Value: clip(checkDetail(c), discordFieldValueMax)}
		cost := units(fd.Name) + units(fd.Value)
		// Unless this is the last check, room must stay for the "more"
		// field in case the next one does not fit.
		slots, room := 1, cost
		if i < len(m.Checks)-1 {
			slots, room = 2, cost+discordMoreReserve
		}
		if discordFieldsMax-len(e.Fields) < slots || discordEmbedTotalMax-used < room {
			e.Fields = append(e.Fields, discordField{Name: "More", Value: moreChecks(len(m.Checks) - i)})
			break
		}
		e.Fields = append(e.Fields, fd)
		used += cost
	}
	return discordMessage{
		Username:        clip(o.Username, discordUsernameMax),
		Content:         clip(discordEmoji[lv]+" "+m.headline(), discordContentMax),
		Embeds:          []discordEmbed{e},
		AllowedMentions: discordMentions{Parse: []string{}},
	}
}

// ---------------------------------------------------------------------------
// Google Chat: an incoming webhook message with a cardsV2 card.

type googleChatMessage struct {
	Text    string           `json:"text"`
	CardsV2 []googleChatCard `json:"cardsV2"`
}

type googleChatCard struct {
	CardID string         `json:"cardId"`
	Card   googleCardBody `json:"card"`
}

type googleCardBody struct {
	Header   googleCardHeader    `json:"header"`
	Sections []googleCardSection `json:"sections"`
}

type googleCardHeader struct {
	Title    string `json:"title"`
	Subtitle string `json:"subtitle,omitempty"`
}

type googleCardSection struct {
	Widgets []googleWidget `json:"widgets"`
}

// googleWidget holds exactly one of its fields.
type googleWidget struct {
	TextParagraph *googleTextParagraph `json:"textParagraph,omitempty"`
	DecoratedText *googleDecoratedText `json:"decoratedText,omitempty"`
	ButtonList    *googleButtonList    `json:"buttonList,omitempty"`
}

type googleTextParagraph struct {
	Text string `json:"text"`
}

type googleDecoratedText struct {
	TopLabel string `json:"topLabel"`
	Text     string `json:"text"`
}

type googleButtonList struct {
	Buttons []googleButton `json:"buttons"`
}

type googleButton struct {
	Text    string        `json:"text"`
	OnClick googleOnClick `json:"onClick"`
}

type googleOnClick struct {
	OpenLink googleOpenLink `json:"openLink"`
}

type googleOpenLink struct {
	URL string `json:"url"`
}

// cardHTML fits s into max as Google Chat card text, which is read as a
// small subset of HTML: "&", "<" and ">" are written as entities.
func cardHTML(s string, max int) string { return clipEscaped(s, max, entity) }

// googleChatPayload keeps free text out of the message's top-level text:
// there "<users/all>" would mention everyone and no escape is documented.
// The event's message goes into the card, whose text is HTML.
func googleChatPayload(m Message) googleChatMessage {
	sub := "Severity: " + severityWord(m.Severity)
	if ts := timeString(m.Time); ts != "" {
		sub += " · " + ts
	}
	var widgets []googleWidget
	if m.Text != "" {
		widgets = append(widgets, googleWidget{TextParagraph: &googleTextParagraph{Text: cardHTML(m.Text, cardTextMax)}})
	}
	for _, f := range m.facts() {
		widgets = append(widgets, googleWidget{DecoratedText: &googleDecoratedText{TopLabel: f.label, Text: cardHTML(f.value, cardValueMax)}})
	}
	shown := min(len(m.Checks), cardChecksMax)
	for _, c := range m.Checks[:shown] {
		widgets = append(widgets, googleWidget{DecoratedText: &googleDecoratedText{
			TopLabel: clip(checkName(c), cardLabelMax),
			Text:     cardHTML(checkDetail(c), cardValueMax),
		}})
	}
	if rest := len(m.Checks) - shown; rest > 0 {
		widgets = append(widgets, googleWidget{DecoratedText: &googleDecoratedText{TopLabel: "More", Text: moreChecks(rest)}})
	}
	if m.Link != "" {
		widgets = append(widgets, googleWidget{ButtonList: &googleButtonList{Buttons: []googleButton{{
			Text:    linkText,
			OnClick: googleOnClick{OpenLink: googleOpenLink{URL: m.Link}},
		}}}})
	}
	return googleChatMessage{
		Text: clip("["+severityWord(m.Severity)+"] "+m.headline(), cardTitleMax),
		CardsV2: []googleChatCard{{
			CardID: "sluice",
			Card: googleCardBody{
				Header:   googleCardHeader{Title: clip(m.headline(), cardTitleMax), Subtitle: clip(sub, cardTitleMax)},
				Sections: []googleCardSection{{Widgets: widgets}},
			},
		}},
	}
}

// ---------------------------------------------------------------------------
// Sluice's own webhook: every field as it is, nothing cut.

type webhookMessage struct {
	Namespace string         `json:"namespace"`
	Canary    string         `json:"canary"`
	Revision  string         `json:"revision,omitempty"`
	Phase     string         `json:"phase"`
	Weight    int32          `json:"weight"`
	Severity  string         `json:"severity"`
	Reason    string         `json:"reason"`
	Message   string         `json:"message"`
	Checks    []webhookCheck `json:"checks"`
	Link      string         `json:"link,omitempty"`
	Time      string         `json:"time,omitempty"` // RFC 3339 in UTC; left out for the zero time
}

type webhookCheck struct {
	Name    string `json:"name"`
	Value   string `json:"value"`
	Message string `json:"message"`
}

func webhookPayload(m Message) webhookMessage {
	checks := make([]webhookCheck, 0, len(m.Checks))
	for _, c := range m.Checks {
		checks = append(checks, webhookCheck(c))
	}
	return webhookMessage{
		Namespace: m.Namespace,
		Canary:    m.Canary,
		Revision:  m.Revision,
		Phase:     m.Phase,
		Weight:    m.Weight,
		Severity:  m.Severity,
		Reason:    m.Reason,
		Message:   m.Text,
		Checks:    checks,
		Link:      m.Link,
		Time:      timeString(m.Time),
	}
}
