package web

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"petbreed/internal/ab"
	"petbreed/internal/serve"
	"petbreed/internal/testassets"
)

// restartable serves one loopback address with one handler at a time, or
// with none (the address refuses connections): the page's server stopped
// and started again in another configuration, on the same origin.
type restartable struct {
	t    *testing.T
	addr string
	srv  *http.Server
}

func newRestartable(t *testing.T) *restartable {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	r := &restartable{t: t, addr: addr}
	t.Cleanup(r.stop)
	return r
}

func (r *restartable) start(h http.Handler) {
	r.t.Helper()
	r.stop()
	var ln net.Listener
	var err error
	for range 100 { // the port was just released
		if ln, err = net.Listen("tcp", r.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatalf("listen again on %s: %v", r.addr, err)
	}
	r.srv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go r.srv.Serve(ln)
}

func (r *restartable) stop() {
	if r.srv != nil {
		r.srv.Close()
		r.srv = nil
	}
}

// logLine is a line of the prediction log as the test reads the file.
type logLine struct {
	Kind      string `json:"kind"`
	RequestID string `json:"request_id"`
	Label     string `json:"label"`
	TopK      []struct {
		Label string `json:"label"`
	} `json:"top_k"`
}

// readLog reads the prediction log's file (the report flushes it first).
func readLog(t *testing.T, path string) (predictions, feedback []logLine) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l logLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("%s: line %q: %v", path, sc.Text(), err)
		}
		if l.Kind == "feedback" {
			feedback = append(feedback, l)
		} else {
			predictions = append(predictions, l)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return predictions, feedback
}

// fbState is a result card's feedback control as the page shows it.
type fbState struct {
	ID        string   `json:"id"`        // the card's data-id
	RequestID string   `json:"requestID"` // the answer's request_id, as the card keeps it
	Top       string   `json:"top"`       // the first bar's label
	Hidden    bool     `json:"hidden"`
	Disabled  bool     `json:"disabled"`
	Question  string   `json:"question"`
	Yes       string   `json:"yes"`
	Options   []string `json:"options"` // the select's breeds (values), placeholder excluded
	Status    string   `json:"status"`
	Tone      string   `json:"tone"` // good, bad or ""
	Change    bool     `json:"change"`
	Focus     string   `json:"focus"` // the class of the focused element, when it is in the card
}

const fbStateJS = `(name => {
	const r = [...document.querySelectorAll("#results .result")].find(r => r.querySelector(".name").textContent === name);
	if (!r) return null;
	const fb = r.querySelector(".feedback"), st = fb.querySelector(".fb-status");
	const a = document.activeElement;
	return {
		id: r.dataset.id, requestID: r.dataset.requestId || "",
		top: (r.querySelector(".bars li:not(.placeholder) .label") || {}).textContent || "",
		hidden: fb.hidden, disabled: fb.querySelector("fieldset").disabled,
		question: fb.querySelector("legend").textContent, yes: fb.querySelector(".fb-yes").textContent,
		options: [...fb.querySelectorAll(".fb-pick option")].map(o => o.value).filter(Boolean),
		status: st.querySelector(".fb-text").textContent,
		tone: st.classList.contains("good") ? "good" : st.classList.contains("bad") ? "bad" : "",
		change: !fb.querySelector(".fb-change").hidden,
		focus: a && r.contains(a) ? a.className : "",
	};
})`

// TestBrowserFeedback: the page's "Is this right?" control, in Chromium, on
// a real server (the real champion, real images) with a real prediction
// log: confirming the top-1 and choosing another breed (by keyboard) reach
// the log with the answer's request id and the chosen label, the A/B view's
// accuracy counts them, a changed answer replaces the first as the log
// does; then the same page meets a stopped server, one without a
// prediction log, one with a fresh log (which does not know the request)
// and the first log reopened after a restart (which does).
func TestBrowserFeedback(t *testing.T) {
	exe := findChromium(t)
	sum := trained(t)
	images := testassets.Path(t, "pets-3breeds", "images")
	shots := screenshotDir(t)

	newServer := func(pl serve.PredictionLog) *serve.Server {
		t.Helper()
		srv, err := serve.New(serve.Config{Model: "models:/pet-breed@champion", TrackingURI: sum.Tracking, Poll: -1,
			Page: New(Config{}), PredictionLog: pl})
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Load(); err != nil {
			t.Fatalf("load the champion: %v", err)
		}
		t.Cleanup(srv.Close)
		return srv
	}
	openLog := func(path string) *ab.Log {
		t.Helper()
		l, err := ab.Open(path, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	}
	logPath := filepath.Join(t.TempDir(), "predictions.jsonl")
	plog := openLog(logPath)
	first := newServer(plog)
	site := newRestartable(t)
	site.start(first.Handler())
	base := "http://" + site.addr

	report := func() ab.Report {
		t.Helper()
		var rep ab.Report
		if res := call(t, "GET", base+"/api/ab", "", "", &rep); res.StatusCode != 200 {
			t.Fatalf("/api/ab: %s", res.Status)
		}
		return rep
	}
	b := newBrowser(t, exe, base)
	state := func(name string) fbState {
		t.Helper()
		return eval[fbState](t, b, "("+fbStateJS+")("+strconv.Quote(name)+")")
	}
	b.do(t, "open the page", chromedp.EmulateViewport(1280, 900, chromedp.EmulateScale(1)), chromedp.Navigate(base+"/"))
	b.wait(t, "the model to be ready", `document.querySelector("#model-status").textContent.includes("ready")`)
	b.wait(t, "the classes", `document.querySelector("#classes").textContent.includes("Bengal")`)

	// classify uploads one image and waits for its card; the log's newest
	// prediction is its answer.
	nPred := 0
	classify := func(file string) fbState {
		t.Helper()
		name := filepath.Base(file)
		b.do(t, "choose "+name, chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{file}))
		b.wait(t, name, settled(name))
		b.wait(t, name+"'s feedback control", fmt.Sprintf(`(%s)(%s).disabled === false`, fbStateJS, strconv.Quote(name)))
		return state(name)
	}
	sel := func(s fbState, part string) string { return fmt.Sprintf(`#results .result[data-id=%q] %s`, s.ID, part) }
	waitStatus := func(s fbState, name, want string) fbState {
		t.Helper()
		b.wait(t, "the feedback outcome on "+name, fmt.Sprintf(`(%s)(%s).status.includes(%s)`, fbStateJS, strconv.Quote(name), strconv.Quote(want)))
		return state(name)
	}
	predictionsLogged := func(want int) []logLine {
		t.Helper()
		report() // flushes the log
		preds, _ := readLog(t, logPath)
		if len(preds) != want {
			t.Fatalf("%d predictions logged, want %d", len(preds), want)
		}
		return preds
	}
	feedbackLogged := func() []logLine {
		t.Helper()
		report()
		_, fb := readLog(t, logPath)
		return fb
	}
	// abAccuracy opens the A/B view (which loads /api/ab again) and waits
	// for the one version's accuracy cell to read want, then goes back.
	abAccuracy := func(want string) {
		t.Helper()
		b.do(t, "open the A/B view", chromedp.Click(chromedp.CSS("#nav-ab")))
		b.wait(t, "the A/B accuracy "+want, fmt.Sprintf(`(c => c && /^%s$/.test(c.textContent))(document.querySelector("#ab-table tbody tr:only-child td.accuracy"))`, want))
		b.do(t, "back to classify", chromedp.Click(chromedp.CSS("#nav-classify")))
	}

	// 1. Confirm the top-1 with one click.
	bengal := classify(filepath.Join(images, "Bengal_101.jpg"))
	nPred++
	preds := predictionsLogged(nPred)
	if bengal.RequestID == "" || bengal.RequestID != preds[0].RequestID || bengal.Top != "Bengal" || preds[0].TopK[0].Label != bengal.Top {
		t.Fatalf("card %+v, logged prediction %+v", bengal, preds[0])
	}
	if bengal.Hidden || bengal.Question != "Is this right?" || bengal.Yes != "Yes, Bengal" || bengal.Status != "" {
		t.Errorf("control before feedback: %+v", bengal)
	}
	// The breeds to choose from: the model's classes but the top-1, its
	// next guesses first.
	if len(bengal.Options) != 2 || strings.Contains(strings.Join(bengal.Options, ","), "Bengal") {
		t.Errorf("options %q, want the 2 other breeds", bengal.Options)
	}
	// Every control has a name, the group its question, the outcome a live region.
	if bad := eval[[]string](t, b, `[...document.querySelectorAll("#results .feedback :is(button, select)")].filter(e =>
			!(e.labels && e.labels.length) && !e.getAttribute("aria-label") && !e.textContent.trim()).map(e => e.outerHTML)`); len(bad) > 0 {
		t.Errorf("feedback controls without a name: %q", bad)
	}
	if ok := eval[bool](t, b, `[...document.querySelectorAll("#results .feedback")].every(f =>
			f.querySelector("fieldset > legend") && f.querySelector(".fb-status").getAttribute("role") === "status")`); !ok {
		t.Error("a feedback control lacks its legend or its status region")
	}
	abAccuracy("no feedback")
	b.do(t, "confirm", chromedp.Click(chromedp.CSS(sel(bengal, ".fb-yes"))))
	got := waitStatus(bengal, "Bengal_101.jpg", "Thanks: recorded as Bengal.")
	if !got.Disabled || !got.Change || got.Tone != "good" {
		t.Errorf("after the confirmation: %+v, want the control disabled, Change offered", got)
	}
	if fb := feedbackLogged(); len(fb) != 1 || fb[0].RequestID != bengal.RequestID || fb[0].Label != "Bengal" {
		t.Fatalf("feedback logged %+v, want Bengal for %s", fb, bengal.RequestID)
	}
	if rep := report(); rep.Feedback != 1 || rep.Versions[0].Accuracy == nil || rep.Versions[0].Accuracy.N != 1 || rep.Versions[0].Accuracy.Rate != 1 {
		t.Errorf("report after one confirmation: %+v", rep)
	}
	abAccuracy(`100\.0% \[.*\] of 1`)

	// 2. Another breed, by keyboard only: the select, an arrow, Tab, Enter.
	dog := classify(filepath.Join(images, "american_bulldog_10.jpg"))
	nPred++
	preds = predictionsLogged(nPred)
	if dog.RequestID != preds[1].RequestID || dog.RequestID == bengal.RequestID {
		t.Fatalf("card %+v, logged %+v", dog, preds[1])
	}
	b.do(t, "choose a breed by keyboard", chromedp.Focus(chromedp.CSS(sel(dog, ".fb-pick"))),
		chromedp.KeyEvent(kb.ArrowDown), chromedp.KeyEvent("\t"))
	if f := state("american_bulldog_10.jpg").Focus; !strings.Contains(f, "fb-send") {
		t.Fatalf("Tab from the select went to %q, want Send", f)
	}
	picked := eval[string](t, b, fmt.Sprintf(`document.querySelector(%s).value`, strconv.Quote(sel(dog, ".fb-pick"))))
	if picked == "" || picked == dog.Top || picked != dog.Options[0] {
		t.Fatalf("the arrow chose %q, want the first other breed of %q", picked, dog.Options)
	}
	b.do(t, "send by keyboard", chromedp.KeyEvent("\r"))
	got = waitStatus(dog, "american_bulldog_10.jpg", "Thanks: recorded as "+picked+".")
	if !got.Disabled || !got.Change || !strings.Contains(got.Focus, "fb-change") {
		t.Errorf("after sending by keyboard: %+v, want the focus on Change", got)
	}
	if fb := feedbackLogged(); len(fb) != 2 || fb[1].RequestID != dog.RequestID || fb[1].Label != picked {
		t.Fatalf("feedback logged %+v, want %s for %s", fb, picked, dog.RequestID)
	}
	abAccuracy(`50\.0% \[.*\] of 2`)
	b.screenshot(t, shots, "feedback-1280.png", 1280)
	b.screenshot(t, shots, "feedback-390.png", 390)
	b.do(t, "viewport", chromedp.EmulateViewport(1280, 900, chromedp.EmulateScale(1)))

	// 3. Change the first answer: the log's second feedback for a request
	// replaces the first, so the count stays and the accuracy falls.
	b.do(t, "change", chromedp.Click(chromedp.CSS(sel(bengal, ".fb-change"))))
	if got := state("Bengal_101.jpg"); got.Disabled || got.Change || !strings.Contains(got.Status, "replace") {
		t.Errorf("after Change: %+v, want the control enabled, saying a new answer replaces Bengal", got)
	}
	other := bengal.Options[len(bengal.Options)-1]
	b.do(t, "choose "+other, chromedp.SetValue(chromedp.CSS(sel(bengal, ".fb-pick")), other),
		chromedp.Click(chromedp.CSS(sel(bengal, ".fb-send"))))
	waitStatus(bengal, "Bengal_101.jpg", "Thanks: recorded as "+other+".")
	if fb := feedbackLogged(); len(fb) != 3 || fb[2].RequestID != bengal.RequestID || fb[2].Label != other {
		t.Fatalf("feedback logged %+v, want %s for %s", fb, other, bengal.RequestID)
	}
	if rep := report(); rep.Feedback != 2 || rep.Versions[0].Accuracy.N != 2 || rep.Versions[0].Accuracy.Rate != 0 {
		t.Errorf("report after the change: %+v", rep)
	}
	abAccuracy(`0\.0% \[.*\] of 2`)

	// 4. Send with no breed chosen: the page asks for one, sends nothing.
	aby := classify(filepath.Join(images, "Abyssinian_100.jpg"))
	nPred++
	b.do(t, "send nothing", chromedp.Click(chromedp.CSS(sel(aby, ".fb-send"))))
	if got := state("Abyssinian_100.jpg"); got.Status != "Choose the true breed first." || got.Tone != "bad" || !strings.Contains(got.Focus, "fb-pick") {
		t.Errorf("send without a breed: %+v", got)
	}
	if fb := feedbackLogged(); len(fb) != 3 {
		t.Errorf("feedback logged %+v after an empty send", fb)
	}
	predictionsLogged(nPred)

	// 5. The server stopped: a network failure, said so; the control stays usable.
	site.stop()
	b.do(t, "confirm, server down", chromedp.Click(chromedp.CSS(sel(aby, ".fb-yes"))))
	got = waitStatus(aby, "Abyssinian_100.jpg", "cannot be reached")
	if got.Disabled || got.Change || got.Tone != "bad" {
		t.Errorf("network failure: %+v, want the control enabled again", got)
	}

	// 6. A server without a prediction log: the page says how to get one,
	// and classifying and the other views go on working.
	site.start(newServer(nil).Handler())
	b.do(t, "confirm, no log", chromedp.Click(chromedp.CSS(sel(aby, ".fb-yes"))))
	got = waitStatus(aby, "Abyssinian_100.jpg", "This server does not record feedback (start it with --prediction-log).")
	if got.Disabled || got.Tone != "bad" {
		t.Errorf("no log: %+v", got)
	}
	if c := classify(filepath.Join(images, "Bengal_102.jpg")); c.Top != "Bengal" || c.RequestID == "" || c.Hidden {
		t.Errorf("classifying on the server without a log: %+v", c)
	}
	notes := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(notes, []byte("not an image"), 0o644); err != nil {
		t.Fatal(err)
	}
	b.do(t, "choose a text file", chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{notes}))
	b.wait(t, "the text file's card", settled("notes.txt"))
	if !eval[bool](t, b, fmt.Sprintf(`(%s)("notes.txt").hidden`, fbStateJS)) {
		t.Error("a card without an answer shows the feedback control")
	}
	b.do(t, "open the A/B view", chromedp.Click(chromedp.CSS("#nav-ab")))
	b.wait(t, "the A/B view's explanation", `document.querySelector("#ab-status").textContent.includes("keeps no prediction log")`)
	b.do(t, "back to classify", chromedp.Click(chromedp.CSS("#nav-classify")))

	// 7. A server with a fresh log: it does not know the request, and its
	// error is shown as it answered it.
	site.start(newServer(openLog(filepath.Join(t.TempDir(), "fresh.jsonl"))).Handler())
	b.do(t, "confirm, fresh log", chromedp.Click(chromedp.CSS(sel(aby, ".fb-yes"))))
	got = waitStatus(aby, "Abyssinian_100.jpg", "unknown request")
	if !strings.Contains(got.Status, aby.RequestID) || got.Disabled {
		t.Errorf("fresh log: %+v, want the server's error naming %s", got, aby.RequestID)
	}

	// 8. The first log after a restart knows its requests: accepted.
	site.stop()
	first.Close()
	if err := plog.Close(); err != nil {
		t.Fatal(err)
	}
	plog = openLog(logPath)
	site.start(newServer(plog).Handler())
	b.do(t, "confirm, restarted", chromedp.Click(chromedp.CSS(sel(aby, ".fb-yes"))))
	waitStatus(aby, "Abyssinian_100.jpg", "Thanks: recorded as "+aby.Top+".")
	if fb := feedbackLogged(); len(fb) != 4 || fb[3].RequestID != aby.RequestID || fb[3].Label != aby.Top {
		t.Errorf("feedback logged %+v, want %s for %s", fb, aby.Top, aby.RequestID)
	}
	if rep := report(); rep.Feedback != 3 {
		t.Errorf("report after the restart: %d requests with feedback, want 3", rep.Feedback)
	}

	// 9. A page opened on a server without a log says so on each answer
	// before it is used (/api/health's "feedback"), the control still usable.
	site.start(newServer(nil).Handler())
	b.do(t, "reopen the page", chromedp.Navigate(base+"/"))
	b.wait(t, "the model to be ready", `document.querySelector("#model-status").textContent.includes("ready")`)
	if got := classify(filepath.Join(images, "Bengal_103.jpg")); got.Status != "This server does not record feedback (start it with --prediction-log)." || got.Disabled {
		t.Errorf("an answer from a server without a log: %+v", got)
	}

	b.checkClean(t)
}
