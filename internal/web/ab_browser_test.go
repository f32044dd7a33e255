package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"petbreed"
	"petbreed/internal/ab"
	"petbreed/internal/serve"
	"petbreed/internal/testassets"
)

// predictOne posts one image to a real server's /api/predict.
func predictOne(t *testing.T, base, path string) ([]petbreed.Prediction, float64) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, err := mw.CreateFormFile("file", filepath.Base(path))
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(data)
	mw.Close()
	res, err := http.Post(base+"/api/predict", mw.FormDataContentType(), &body)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		t.Fatalf("predict %s: %d %s", path, res.StatusCode, b)
	}
	var out struct {
		TopK []petbreed.Prediction `json:"top_k"`
		Ms   float64               `json:"ms"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out.TopK, out.Ms
}

// TestBrowserAB: two real pipeline-trained versions, each in a real server,
// answer the same real images (version 1 returned, version 2 as its
// shadow); the answers go to a real prediction log, the true breeds come
// back through the feedback endpoint, and the page's A/B view in Chromium
// shows the comparison /api/ab computes.
func TestBrowserAB(t *testing.T) {
	exe := findChromium(t)
	_, storeDir, _ := storeCopy(t)
	shots := screenshotDir(t)
	images := testassets.Path(t, "pets-3breeds", "images")

	servers := map[string]*httptest.Server{}
	for _, v := range []string{"1", "2"} {
		srv, err := serve.New(serve.Config{Model: "models:/pet-breed/" + v, TrackingURI: storeDir, Poll: -1})
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Load(); err != nil {
			t.Fatalf("load version %s: %v", v, err)
		}
		t.Cleanup(srv.Close)
		ts := httptest.NewServer(srv.Handler())
		t.Cleanup(ts.Close)
		servers[v] = ts
	}

	log, err := ab.Open(filepath.Join(t.TempDir(), "predictions.jsonl"), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })

	// The page and the log's endpoints, as serve mounts them; the log can be
	// switched off to see the page explain a server without one.
	var noLog atomic.Bool
	mux := http.NewServeMux()
	New(Config{}).Register(mux)
	mux.Handle("/api/ab", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if noLog.Load() {
			writeError(w, errorf(http.StatusNotFound, "not found", "no prediction log"))
			return
		}
		log.ReportHandler().ServeHTTP(w, r)
	}))
	mux.Handle("/api/feedback", log.FeedbackHandler())
	mux.Handle("/", servers["1"].Config.Handler)
	page := httptest.NewServer(mux)
	t.Cleanup(page.Close)

	// The last 8 images of each breed, both versions; the true breed is the file's.
	entries, err := os.ReadDir(images)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, breed := range []string{"Abyssinian", "Bengal", "american_bulldog"} {
		var of []string
		for _, e := range entries {
			if rest, ok := strings.CutPrefix(e.Name(), breed+"_"); ok && strings.HasSuffix(rest, ".jpg") {
				of = append(of, filepath.Join(images, e.Name()))
			}
		}
		sort.Strings(of)
		files = append(files, of[len(of)-8:]...)
	}
	for i, f := range files {
		id := fmt.Sprintf("req-%02d", i)
		for _, v := range []string{"1", "2"} {
			top, ms := predictOne(t, servers[v].URL, f)
			log.Record(ab.Record{RequestID: id, Time: time.Now(), Model: "pet-breed", Version: v, Shadow: v == "2", TopK: top, LatencyMS: ms})
		}
	}
	if err := log.Flush(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	for i, f := range files {
		breed := strings.TrimSuffix(filepath.Base(f), filepath.Ext(f))
		breed = breed[:strings.LastIndexByte(breed, '_')]
		res := call(t, "POST", page.URL+"/api/feedback", "", fmt.Sprintf(`{"request_id":"req-%02d","label":%q}`, i, breed), nil)
		if res.StatusCode != 200 {
			t.Fatalf("feedback: %s", res.Status)
		}
	}
	n := len(files)
	var rep ab.Report
	if res := call(t, "GET", page.URL+"/api/ab", "", "", &rep); res.StatusCode != 200 {
		t.Fatalf("/api/ab: %s", res.Status)
	}
	if rep.Champion != "pet-breed/1" || rep.Records != 2*len(files) || rep.Feedback != len(files) || len(rep.Versions) != 2 ||
		rep.Versions[0].Accuracy == nil || rep.Versions[0].Accuracy.Rate < 0.6 || rep.Versions[1].Agreement == nil {
		t.Fatalf("%+v", rep)
	}

	b := newBrowser(t, exe, page.URL)
	b.do(t, "open the A/B view", chromedp.EmulateViewport(1280, 900, chromedp.EmulateScale(1)), chromedp.Navigate(page.URL+"/"),
		chromedp.Click(chromedp.CSS("#nav-ab")))
	b.wait(t, "the versions", `document.querySelectorAll("#ab-table tbody tr").length === 2`)

	type rowJSON struct {
		Key, Head, Requests, Share, Shadow, Agreement, Accuracy string
	}
	const rowsJS = `[...document.querySelectorAll("#ab-table tbody tr")].map(r => ({
		Key: r.dataset.key, Head: r.cells[0].textContent, Requests: r.cells[1].textContent, Share: r.cells[2].textContent,
		Shadow: r.cells[3].textContent, Agreement: r.cells[6].textContent, Accuracy: r.cells[7].textContent}))`
	pctText := func(x float64) string { return fmt.Sprintf("%.1f%%", 100*x) }
	rows := eval[[]rowJSON](t, b, rowsJS)
	champ, chall := rows[0], rows[1]
	a1, a2 := rep.Versions[0].Accuracy, rep.Versions[1].Accuracy
	if champ.Key != "pet-breed/1" || !strings.Contains(champ.Head, "★ champion") || champ.Requests != fmt.Sprint(n) ||
		champ.Share != "100.0%" || champ.Shadow != "0" || champ.Agreement != "–" ||
		champ.Accuracy != fmt.Sprintf("%s [%s, %s] of %d", pctText(a1.Rate), pctText(a1.Low), pctText(a1.High), n) {
		t.Errorf("champion row %+v, want accuracy %+v", champ, a1)
	}
	if chall.Key != "pet-breed/2" || !strings.Contains(chall.Head, "challenger") || chall.Requests != "0" ||
		chall.Share != "0.0%" || chall.Shadow != fmt.Sprint(n) ||
		chall.Agreement != fmt.Sprintf("%s of %d", pctText(rep.Versions[1].Agreement.Rate), n) ||
		chall.Accuracy != fmt.Sprintf("%s [%s, %s] of %d", pctText(a2.Rate), pctText(a2.Low), pctText(a2.High), n) {
		t.Errorf("challenger row %+v, want %+v %+v", chall, rep.Versions[1].Agreement, a2)
	}
	verdict := eval[string](t, b, `document.querySelector("#ab-verdicts li[data-kind=accuracy]").textContent`)
	if want := "pet-breed/2 against pet-breed/1: " + rep.Versions[1].Verdict; verdict != want {
		t.Errorf("verdict %q, want %q", verdict, want)
	}
	// Every image had feedback and both answers: the paired test too.
	paired := eval[string](t, b, `document.querySelector("#ab-verdicts li[data-kind=paired]").textContent`)
	if p := rep.Versions[1].Paired; p == nil || p.N != n || paired != "pet-breed/2 against pet-breed/1: "+p.Verdict {
		t.Errorf("paired verdict %q, want %+v", paired, p)
	}
	if s := eval[string](t, b, `document.querySelector("#ab-status").textContent`); s != fmt.Sprintf("%d predictions logged, %d requests with feedback.", 2*n, n) {
		t.Errorf("status %q", s)
	}
	// The interval is drawn where the numbers say, on a 120 px scale.
	x := eval[float64](t, b, `+document.querySelector("#ab-table tbody tr .interval .ci").getAttribute("x")`)
	if want := a1.Low * 120; x < want-0.1 || x > want+0.1 {
		t.Errorf("interval starts at %v px, want %v", x, want)
	}
	b.screenshot(t, shots, "ab-1280.png", 1280)
	b.screenshot(t, shots, "ab-390.png", 390)
	b.do(t, "viewport", chromedp.EmulateViewport(1280, 900, chromedp.EmulateScale(1)))

	// Another champion: the rows and the verdict turn round.
	b.do(t, "pick version 2", chromedp.SetValue(chromedp.CSS("#ab-champion"), "pet-breed/2"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector("#ab-champion").dispatchEvent(new Event("change"))`))
	b.wait(t, "version 2 first", `document.querySelector("#ab-table tbody tr").dataset.key === "pet-breed/2"`)
	if v := eval[string](t, b, `document.querySelector("#ab-verdicts li").textContent`); !strings.HasPrefix(v, "pet-breed/1 against pet-breed/2: ") {
		t.Errorf("verdict %q", v)
	}

	// A new prediction shows on Refresh.
	log.Record(ab.Record{RequestID: "late", Model: "pet-breed", Version: "1", TopK: []petbreed.Prediction{{Label: "Bengal", Probability: 1}}, LatencyMS: 1})
	b.do(t, "refresh", chromedp.Click(chromedp.CSS("#ab-refresh")))
	b.wait(t, "the new count", fmt.Sprintf(`document.querySelector("#ab-status").textContent.startsWith("%d predictions")`, 2*n+1))

	// A server without a prediction log: the view says so.
	noLog.Store(true)
	b.do(t, "refresh", chromedp.Click(chromedp.CSS("#ab-refresh")))
	b.wait(t, "the explanation", `document.querySelector("#ab-status").textContent.includes("keeps no prediction log")`)
	if vis := eval[bool](t, b, `document.querySelector("#ab-table").hidden && document.querySelector("#ab-verdicts").hidden`); !vis {
		t.Error("the table is shown without a log")
	}

	b.checkClean(t)
}
