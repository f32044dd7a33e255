package web

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"petbreed/internal/serve"
	"petbreed/internal/testassets"
)

// The browser tests drive Debian's Chromium, headless, through the page
// served by the real model server (serve.Server) with this package's
// routes on the same mux, as `petbreed serve` composes them, on loopback:
// a real model (the champion of the test's pipeline run), real images.

const chromiumPath = "/usr/bin/chromium"

func findChromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("PETBREED_CHROMIUM"); p != "" {
		return p
	}
	if _, err := os.Stat(chromiumPath); err == nil {
		return chromiumPath
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	t.Skipf("browser tests skipped: no Chromium at %s (make test installs it: scripts/deps.sh, apt-get install chromium)", chromiumPath)
	return ""
}

// screenshotDir is where the screenshots go: $PETBREED_ARTIFACTS, else
// out/screenshots in the repository (git-ignored).
func screenshotDir(t *testing.T) string {
	dir := os.Getenv("PETBREED_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(testassets.Root(t), "out", "screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

const adminToken = "browser-test-token"

// browser is one page in a headless Chromium, with what it reported.
type browser struct {
	ctx      context.Context
	mu       sync.Mutex
	bases    []string // the servers' URLs: requests elsewhere are foreign
	jsErrors []string
	foreign  []string // requests to anything but the server
}

func (b *browser) do(t *testing.T, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// wait polls a JavaScript predicate until it is truthy.
// checkClean fails the test for the page's JavaScript errors and for
// requests it made outside the server.
func (b *browser) checkClean(t *testing.T) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.jsErrors) > 0 {
		t.Errorf("JavaScript errors:\n%s", strings.Join(b.jsErrors, "\n"))
	}
	if len(b.foreign) > 0 {
		t.Errorf("requests outside the server: %q", b.foreign)
	}
}

func (b *browser) wait(t *testing.T, what, predicate string) {
	t.Helper()
	b.do(t, "wait for "+what, chromedp.Poll[chromedp.Void](predicate, chromedp.WithPollingTimeout(20*time.Second), chromedp.WithPollingInterval(25*time.Millisecond)))
}

func eval[T any](t *testing.T, b *browser, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %.80s: %v", expr, err)
	}
	return v
}

func newBrowser(t *testing.T, exe, base string) *browser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("password-store", "basic"),
		chromedp.UserDataDir(t.TempDir()),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	b := &browser{ctx: ctx, bases: []string{base}}
	start := time.Now()
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", exe, err)
	}
	t.Logf("chromium started in %v", time.Since(start).Round(time.Millisecond))
	err := chromedp.Listen(ctx, func(ev any) {
		b.mu.Lock()
		defer b.mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			b.jsErrors = append(b.jsErrors, fmt.Sprintf("%s:%d: %s", d.URL, d.LineNumber+1, msg))
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				var parts []string
				for _, a := range ev.Args {
					parts = append(parts, a.Description+string(a.Value))
				}
				b.jsErrors = append(b.jsErrors, "console.error: "+strings.Join(parts, " "))
			}
		case *network.EventRequestWillBeSent:
			u := ev.Request.URL
			if !slices.ContainsFunc(b.bases, func(base string) bool { return strings.HasPrefix(u, base+"/") }) &&
				!strings.HasPrefix(u, "blob:") && !strings.HasPrefix(u, "data:") {
				b.foreign = append(b.foreign, u)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// cards returns the result cards: name, first breed, error text.
type card struct {
	Name  string   `json:"name"`
	Bars  []string `json:"bars"`
	Error string   `json:"error"`
	Meta  string   `json:"meta"`
}

const cardsJS = `[...document.querySelectorAll("#results .result")].map(r => ({
	name: r.querySelector(".name").textContent,
	bars: [...r.querySelectorAll(".bars li:not(.placeholder) .label")].map(l => l.textContent),
	error: r.querySelector(".error").hidden ? "" : r.querySelector(".error").textContent,
	meta: r.querySelector(".meta").textContent,
}))`

func cardNamed(t *testing.T, b *browser, name string) card {
	t.Helper()
	for _, c := range eval[[]card](t, b, cardsJS) {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no result card for %s", name)
	return card{}
}

// settled: the card of this file has its bars or its error.
func settled(name string) string {
	return fmt.Sprintf(`[...document.querySelectorAll("#results .result")].some(r => r.querySelector(".name").textContent === %q &&
		(r.querySelectorAll(".bars li:not(.placeholder)").length > 0 || !r.querySelector(".error").hidden))`, name)
}

// screenshot saves the whole page at this width and checks the PNG.
func (b *browser) screenshot(t *testing.T, dir, name string, width int64) {
	t.Helper()
	viewport := chromedp.EmulateViewport(width, 900, chromedp.EmulateScale(1))
	if width < 600 { // a phone: touch, so the camera button shows
		viewport = chromedp.EmulateViewport(width, 844, chromedp.EmulateScale(1), chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait)
	}
	b.do(t, "viewport", viewport)
	// Let the layout (and the charts, redrawn at the new width) settle.
	eval[bool](t, b, `new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(() => r(true), 100))))`)
	if over := eval[int](t, b, `document.documentElement.scrollWidth - window.innerWidth`); over > 0 {
		wide := eval[[]string](t, b, `[...document.querySelectorAll("body *")].filter(e => {
				if (e.getBoundingClientRect().right <= window.innerWidth + 1) return false;
				const abs = ["absolute", "fixed"].includes(getComputedStyle(e).position);
				for (let a = e.parentElement; a && a !== document.body; a = a.parentElement) {
					const s = getComputedStyle(a);
					if (s.overflowX !== "visible" && (!abs || s.position !== "static")) return false; // clipped there
				}
				return true;
			}).slice(0, 8)
			.map(e => e.tagName + "#" + e.id + "." + e.className + " right=" + Math.round(e.getBoundingClientRect().right))`)
		t.Errorf("%s at %d px: the page is %d px wider than the window; widest elements: %q", name, width, over, wide)
	}
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if len(shot) == 0 {
		t.Fatalf("screenshot %s is empty", name)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if got := img.Bounds().Dx(); got != int(width) || img.Bounds().Dy() < 300 {
		t.Errorf("screenshot %s is %v, want %d px wide", name, img.Bounds().Size(), width)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s (%v, %d bytes)", p, img.Bounds().Size(), len(shot))
}

func TestBrowser(t *testing.T) {
	exe := findChromium(t)
	images := testassets.Path(t, "pets-3breeds", "images")
	sum, storeDir, st := storeCopy(t)
	shots := screenshotDir(t)
	testStart := time.Now()

	// The page mounted on the real server exactly as petbreed serve does it.
	var srv *serve.Server
	var promotions atomic.Int32
	page := New(Config{Store: st, AdminToken: adminToken, OnPromote: func(name, alias string, version int) {
		promotions.Add(1)
		if alias == ChampionAlias {
			if _, err := srv.Reload(); err != nil {
				t.Errorf("reload after the promotion: %v", err)
			}
		}
	}})
	srv, err := serve.New(serve.Config{Model: "models:/pet-breed@champion", TrackingURI: storeDir, Poll: -1, AdminToken: adminToken, Page: page})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Load(); err != nil {
		t.Fatalf("load the champion: %v", err)
	}
	t.Cleanup(srv.Close)
	mux := http.NewServeMux()
	mux.Handle("/", srv.Handler())
	// Test only: image bytes for the paste and drop events built in the page.
	mux.HandleFunc("GET /testdata/bengal.jpg", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, filepath.Join(images, "Bengal_1.jpg"))
	})
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)

	b := newBrowser(t, exe, ts.URL)
	b.do(t, "open the page",
		chromedp.EmulateViewport(1280, 900, chromedp.EmulateScale(1)),
		// No smooth scrolling: clicks land where the page is.
		chromedp.Func(func(ctx context.Context, tgt *chromedp.Target) error {
			_, err := cdp.Call(ctx, tgt, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
				Features: []*emulation.MediaFeature{{Name: "prefers-reduced-motion", Value: "reduce"}},
			})
			return err
		}),
		chromedp.Navigate(ts.URL+"/"),
	)
	// Cumulative layout shift, measured from the start.
	eval[bool](t, b, `(window.__cls = 0, new PerformanceObserver(l => { for (const e of l.getEntries()) if (!e.hadRecentInput) window.__cls += e.value })
		.observe({type: "layout-shift", buffered: true}), true)`)
	b.wait(t, "the model to be ready", `document.querySelector("#model-status").textContent.includes("ready")`)
	b.wait(t, "the classes", `document.querySelector("#classes").textContent.includes("Bengal")`)

	t.Run("labelled controls", func(t *testing.T) {
		unlabelled := eval[[]string](t, b, `[...document.querySelectorAll("input, select, button, a[href]")].filter(e =>
			!(e.labels && e.labels.length) && !e.getAttribute("aria-label") && !e.getAttribute("aria-labelledby") && !e.textContent.trim()
		).map(e => e.outerHTML)`)
		if len(unlabelled) > 0 {
			t.Errorf("controls without a name: %q", unlabelled)
		}
	})

	t.Run("keyboard", func(t *testing.T) {
		// Tab from the top: the skip link, the three views, then the file
		// picker, whose label shows the focus.
		var path []string
		for range 5 {
			b.do(t, "tab", chromedp.KeyEvent("\t"))
			path = append(path, eval[string](t, b, `document.activeElement.id || document.activeElement.className`))
		}
		if want := []string{"skip", "nav-classify", "nav-experiments", "nav-ab", "file"}; !slices.Equal(path, want) {
			t.Errorf("tab order %q, want %q", path, want)
		}
		if o := eval[string](t, b, `(s => s.outlineStyle + " " + s.outlineWidth)(getComputedStyle(document.querySelector("#file").closest("label")))`); o != "solid 3px" {
			t.Errorf("the focused picker's outline is %q, want solid 3px", o)
		}
	})

	t.Run("upload", func(t *testing.T) {
		b.do(t, "choose two images", chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{
			filepath.Join(images, "Bengal_1.jpg"), filepath.Join(images, "american_bulldog_10.jpg"),
		}))
		b.wait(t, "the Bengal's result", settled("Bengal_1.jpg"))
		b.wait(t, "the bulldog's result", settled("american_bulldog_10.jpg"))
		bengal := cardNamed(t, b, "Bengal_1.jpg")
		if len(bengal.Bars) != 3 || bengal.Bars[0] != "Bengal" || bengal.Error != "" {
			t.Errorf("Bengal_1.jpg: bars %q error %q, want Bengal first of the 3 breeds", bengal.Bars, bengal.Error)
		}
		if !regexp.MustCompile(`^77\.2 KB · [0-9.]+ ms \(server [0-9.]+ ms\)$`).MatchString(bengal.Meta) {
			t.Errorf("Bengal_1.jpg: meta %q, want the size and the times", bengal.Meta)
		}
		if dog := cardNamed(t, b, "american_bulldog_10.jpg"); len(dog.Bars) == 0 || dog.Bars[0] != "American Bulldog" {
			t.Errorf("american_bulldog_10.jpg: bars %q", dog.Bars)
		}
		pcts := eval[[]string](t, b, `[...document.querySelectorAll("#results .result .bars li:first-child .pct")].map(p => p.textContent)`)
		for _, p := range pcts {
			if !strings.HasSuffix(p, "%") {
				t.Errorf("percentage %q", p)
			}
		}
		// The top bar's width is the probability its label shows, and the
		// champion is sure of this Bengal.
		top := eval[[]string](t, b, `(() => { const li = [...document.querySelectorAll("#results .result")].find(r => r.querySelector(".name").textContent === "Bengal_1.jpg").querySelector(".bars li:first-child"); return [li.querySelector(".fill").style.width, li.querySelector(".pct").textContent]; })()`)
		w, errW := strconv.ParseFloat(strings.TrimSuffix(top[0], "%"), 64)
		pct, errP := strconv.ParseFloat(strings.TrimSuffix(top[1], "%"), 64)
		if errW != nil || errP != nil || math.Abs(w-pct) > 0.051 || w < 90 {
			t.Errorf("Bengal bar width %q labelled %q, want the label's probability, over 90%%", top[0], top[1])
		}
	})

	t.Run("what the model sees", func(t *testing.T) {
		eval[bool](t, b, `([...document.querySelectorAll("#results .result")].find(r => r.querySelector(".name").textContent === "Bengal_1.jpg").querySelector(".see").click(), true)`)
		b.wait(t, "the preprocessed image", `(() => { const i = document.querySelector("#seen");
			return i.complete && i.naturalWidth === 224 && i.naturalHeight === 224 && document.querySelector("#inspect-original-cap").textContent.includes("600 × 901") })()`)
		if cap := eval[string](t, b, `document.querySelector("#seen-cap").textContent`); !strings.Contains(cap, "224 × 224") || !strings.Contains(cap, "RGB") {
			t.Errorf("caption %q", cap)
		}
		// Resize: the height follows the width (aspect kept), the true sizes come from the headers.
		eval[bool](t, b, `(() => { const w = document.querySelector("#resize-w"); w.value = "300"; w.dispatchEvent(new Event("input")); return true })()`)
		if h := eval[string](t, b, `document.querySelector("#resize-h").value`); h != "451" {
			t.Errorf("height %q, want 451 (600 x 901 at width 300)", h)
		}
		b.do(t, "resize", chromedp.Click(chromedp.CSS("#resize-go")))
		b.wait(t, "the resized image", `(() => { const i = document.querySelector("#resized"); return i.complete && i.naturalWidth === 300 && i.naturalHeight === 451 })()`)
		if info := eval[string](t, b, `document.querySelector("#resize-info").textContent`); !strings.Contains(info, "Original 600 × 901 (jpeg) → 300 × 451, JPEG") {
			t.Errorf("resize info %q", info)
		}
	})

	t.Run("not a pet", func(t *testing.T) {
		// The champion's pet check: a parrot is flagged, its breed answer
		// kept below the warning; the pets uploaded before are not flagged.
		b.do(t, "choose a parrot", chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{testassets.Path(t, "photos", "parrot.jpg")}))
		b.wait(t, "the parrot's result", settled("parrot.jpg"))
		notPet := `(name) => { const r = [...document.querySelectorAll("#results .result")].find(r => r.querySelector(".name").textContent === name);
			const p = r.querySelector(".notpet"); return p ? p.textContent : "" }`
		if w := eval[string](t, b, "("+notPet+")(\"parrot.jpg\")"); !strings.Contains(w, "does not look like a cat or a dog") || !strings.Contains(w, "threshold") {
			t.Errorf("parrot.jpg: warning %q, want the pet check's", w)
		}
		if c := cardNamed(t, b, "parrot.jpg"); len(c.Bars) != 3 || c.Error != "" {
			t.Errorf("parrot.jpg: bars %q error %q, want the 3 breeds still shown", c.Bars, c.Error)
		}
		for _, name := range []string{"Bengal_1.jpg", "american_bulldog_10.jpg"} {
			if w := eval[string](t, b, "("+notPet+")("+strconv.Quote(name)+")"); w != "" {
				t.Errorf("%s: flagged as not a pet: %q", name, w)
			}
		}
		if a := eval[string](t, b, `document.querySelector("#announce").textContent`); !strings.Contains(a, "parrot.jpg: not a cat or a dog") {
			t.Errorf("the announcement %q does not say the parrot is not a pet", a)
		}
	})

	t.Run("errors", func(t *testing.T) {
		dir := t.TempDir()
		files := map[string][]byte{
			"notes.txt": []byte("not an image"),
			"fake.jpg":  []byte("this is text with a .jpg name"),
			"huge.png":  bytes.Repeat([]byte{0}, 11<<20),
		}
		var paths []string
		for name, data := range files {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
			paths = append(paths, p)
		}
		slices.Sort(paths)
		b.do(t, "choose the bad files", chromedp.SetUploadFiles(chromedp.CSS("#file"), paths))
		for name := range files {
			b.wait(t, name, settled(name))
		}
		for name, want := range map[string]string{
			"notes.txt": "is not an image (text/plain)",
			"fake.jpg":  "is not an image the server can read", // the server's 415, with its detail
			"huge.png":  "is too large",
		} {
			if c := cardNamed(t, b, name); !strings.Contains(c.Error, want) || len(c.Bars) != 0 {
				t.Errorf("%s: error %q bars %q, want %q", name, c.Error, c.Bars, want)
			}
		}
		// The page goes on working.
		b.do(t, "choose an image after the errors", chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{filepath.Join(images, "Bengal_10.jpg")}))
		b.wait(t, "Bengal_10.jpg", settled("Bengal_10.jpg"))
		if c := cardNamed(t, b, "Bengal_10.jpg"); len(c.Bars) == 0 || c.Bars[0] != "Bengal" {
			t.Errorf("after the errors, Bengal_10.jpg: bars %q error %q", c.Bars, c.Error)
		}
	})

	t.Run("paste and drop", func(t *testing.T) {
		got := eval[string](t, b, `(async () => {
			const blob = await (await fetch("/testdata/bengal.jpg")).blob();
			const transfer = name => { const dt = new DataTransfer(); dt.items.add(new File([blob], name, {type: "image/jpeg"})); return dt; };
			const paste = new ClipboardEvent("paste", {clipboardData: transfer("pasted-bengal.jpg"), bubbles: true, cancelable: true});
			if (!paste.clipboardData || !paste.clipboardData.files.length) return "no synthetic clipboard";
			document.body.dispatchEvent(paste);
			document.querySelector("#drop").dispatchEvent(new DragEvent("drop", {dataTransfer: transfer("dropped-bengal.jpg"), bubbles: true, cancelable: true}));
			return "ok";
		})()`)
		if got != "ok" {
			t.Skipf("paste: %s", got)
		}
		for _, name := range []string{"pasted-bengal.jpg", "dropped-bengal.jpg"} {
			b.wait(t, name, settled(name))
			if c := cardNamed(t, b, name); len(c.Bars) == 0 || c.Bars[0] != "Bengal" {
				t.Errorf("%s: bars %q error %q", name, c.Bars, c.Error)
			}
		}
	})

	t.Run("layout shift", func(t *testing.T) {
		cls := eval[float64](t, b, `window.__cls`)
		t.Logf("cumulative layout shift of the classify view: %.4f", cls)
		if cls > 0.1 {
			t.Errorf("cumulative layout shift %.3f, want at most 0.1", cls)
		}
	})

	t.Run("screenshots classify", func(t *testing.T) {
		b.screenshot(t, shots, "classify-1280.png", 1280)
		b.screenshot(t, shots, "classify-390.png", 390)
	})

	t.Run("experiments", func(t *testing.T) {
		b.do(t, "open the experiments", chromedp.EmulateViewport(1280, 900, chromedp.EmulateScale(1)), chromedp.Click(chromedp.CSS("#nav-experiments")))
		b.wait(t, "the runs table", fmt.Sprintf(`document.querySelectorAll("#runs tbody tr").length === %d`, len(sum.Runs)))
		rows := eval[[]string](t, b, `[...document.querySelectorAll("#runs tbody tr")].map(r => r.dataset.run + " " + r.cells[0].textContent)`)
		champions := 0
		for _, r := range rows {
			if strings.Contains(r, "★ champion") {
				champions++
				if !strings.HasPrefix(r, sum.ChampionRunID) {
					t.Errorf("champion marked on %q, want run %s", r, sum.ChampionRunID)
				}
			}
		}
		if champions != 1 {
			t.Errorf("%d champion rows in %q", champions, rows)
		}
		heads := eval[[]string](t, b, `[...document.querySelectorAll("#runs thead th")].map(h => h.textContent)`)
		for _, want := range []string{"Run", "Status", "LR", "Batch", "Val acc", "Test acc", "Duration"} {
			if !slices.Contains(heads, want) {
				t.Errorf("no column %q in %q", want, heads)
			}
		}

		// The run the champion came from is shown: both curves have a train
		// and a validation series, the matrix has the breeds.
		b.wait(t, "the run's curves", `document.querySelectorAll("#chart-loss svg path.series").length === 2 && document.querySelectorAll("#chart-acc svg path.series").length === 2`)
		if h := eval[string](t, b, `document.querySelector("#run-h").textContent`); !strings.Contains(h, sum.Selected) {
			t.Errorf("run shown %q, want %s", h, sum.Selected)
		}
		series := eval[[]string](t, b, `[...document.querySelectorAll(".chart svg path.series")].map(p => p.dataset.series + ":" + (p.getAttribute("d").match(/[ML]/g) || []).length)`)
		epochs := 0
		for _, r := range sum.Runs {
			if r.RunID == sum.SelectedRunID {
				epochs = r.EpochsRun
			}
		}
		want := []string{fmt.Sprintf("train:%d", epochs), fmt.Sprintf("validation:%d", epochs), fmt.Sprintf("train:%d", epochs), fmt.Sprintf("validation:%d", epochs)}
		if !slices.Equal(series, want) {
			t.Errorf("chart series %q, want %q (one path per series, a point per epoch)", series, want)
		}
		cols := eval[[]string](t, b, `[...document.querySelectorAll("#confusion thead th span")].map(s => s.textContent)`)
		rowHeads := eval[[]string](t, b, `[...document.querySelectorAll("#confusion tbody th")].map(s => s.textContent)`)
		cells := eval[int](t, b, `document.querySelectorAll("#confusion tbody td").length`)
		if !slices.Equal(cols, sum.Classes) || !slices.Equal(rowHeads, sum.Classes) || cells != len(sum.Classes)*len(sum.Classes) {
			t.Errorf("confusion matrix: columns %q rows %q, %d cells; want %q", cols, rowHeads, cells, sum.Classes)
		}
		if bg := eval[string](t, b, `document.querySelector("#confusion td.diag").style.background`); !strings.HasPrefix(bg, "rgb(") {
			t.Errorf("heat map cell background %q", bg)
		}
		if n := eval[int](t, b, `document.querySelectorAll("#per-class tbody tr").length`); n != len(sum.Classes) {
			t.Errorf("%d per-class rows", n)
		}

		// Sorting, from the keyboard.
		b.do(t, "sort by validation accuracy", chromedp.Focus(chromedp.CSS(`#runs th button[data-key="m:final_val_acc"]`)), chromedp.KeyEvent("\r"))
		b.wait(t, "the sorted table", `document.querySelector('#runs th[aria-sort]').textContent === "Val acc"`)
		if dir := eval[string](t, b, `document.querySelector('#runs th[aria-sort]').getAttribute("aria-sort")`); dir != "descending" {
			t.Errorf("aria-sort %q", dir)
		}
		vals := eval[[]string](t, b, `(() => { const i = [...document.querySelectorAll("#runs thead th")].findIndex(h => h.textContent === "Val acc");
			return [...document.querySelectorAll("#runs tbody tr")].map(r => r.cells[i].textContent) })()`)
		if len(vals) == 0 || vals[len(vals)-1] != "–" || !slices.IsSortedFunc(vals[:len(vals)-1], func(a, b string) int { return strings.Compare(b, a) }) {
			t.Errorf("values by validation accuracy, descending: %q", vals)
		}

		// The champion's run: the refit has train curves and the test evaluation.
		b.do(t, "open the champion's run", chromedp.Click(chromedp.CSS(fmt.Sprintf(`#runs a[data-run="%s"]`, sum.ChampionRunID))))
		b.wait(t, "the champion's run", `document.querySelector("#run-h").textContent.includes("refit") && document.querySelectorAll("#chart-loss svg path.series").length === 1`)
		if ev := eval[string](t, b, `document.querySelector("#eval-h").textContent`); !strings.Contains(ev, "test") {
			t.Errorf("evaluation %q, want the test split", ev)
		}
		if u, _ := url.Parse(eval[string](t, b, `location.href`)); u.Fragment != "experiments/"+sum.ChampionRunID {
			t.Errorf("location %s", u)
		}
		// Back to the selected run for the screenshots.
		b.do(t, "open the selected run", chromedp.Click(chromedp.CSS(fmt.Sprintf(`#runs a[data-run="%s"]`, sum.SelectedRunID))))
		b.wait(t, "the selected run", `document.querySelectorAll("#chart-acc svg path.series").length === 2`)
	})

	t.Run("screenshots experiments", func(t *testing.T) {
		b.screenshot(t, shots, "experiments-1280.png", 1280)
		b.screenshot(t, shots, "experiments-390.png", 390)
		if n := eval[int](t, b, `document.querySelectorAll("#chart-loss svg path.series").length`); n != 2 {
			t.Errorf("at 390 px, %d loss series", n)
		}
	})

	t.Run("promote", func(t *testing.T) {
		b.do(t, "viewport", chromedp.EmulateViewport(1280, 900, chromedp.EmulateScale(1)))
		b.wait(t, "the registry", `document.querySelectorAll("#versions tbody tr").length === 2 && !document.querySelector("#admin").hidden`)
		promote := `(document.querySelector('#versions button.promote[data-version="2"]').click(), true)`
		status := `document.querySelector("#reg-status").textContent`

		eval[bool](t, b, promote)
		b.wait(t, "asked for the token", status+`.includes("admin token first")`)

		b.do(t, "a wrong token", chromedp.SendKeys(chromedp.CSS("#token"), "wrong"))
		eval[bool](t, b, promote)
		b.wait(t, "refused", status+`.includes("refused")`)
		if v, _ := st.Alias("pet-breed", "champion"); v != 1 || promotions.Load() != 0 {
			t.Fatalf("after a wrong token: champion v%d, %d promotions", v, promotions.Load())
		}

		eval[bool](t, b, `(() => { const i = document.querySelector("#token"); i.value = ""; i.dispatchEvent(new Event("input")); return true })()`)
		b.do(t, "the right token", chromedp.SendKeys(chromedp.CSS("#token"), adminToken))
		eval[bool](t, b, promote)
		b.wait(t, "the server serving v2", status+`.includes("now serves it")`)
		if v, _ := st.Alias("pet-breed", "champion"); v != 2 || promotions.Load() != 1 {
			t.Errorf("champion v%d, %d promotions; want v2, 1", v, promotions.Load())
		}
		if m, ok := srv.Model(); !ok || m.Version != "2" {
			t.Errorf("server model %+v", m)
		}
		if tok := eval[string](t, b, `sessionStorage.getItem("petbreed.adminToken")`); tok != adminToken {
			t.Errorf("token in sessionStorage %q", tok)
		}
		b.wait(t, "the champion badge moved", fmt.Sprintf(`document.querySelector('#runs tr[data-run="%s"]').cells[0].textContent.includes("champion")`, sum.SelectedRunID))
		b.wait(t, "the header", `document.querySelector("#model-status").textContent.includes("v2")`)
	})

	t.Run("tracking not configured", func(t *testing.T) {
		mux := http.NewServeMux()
		New(Config{}).Register(mux)
		mux.Handle("/", srv.Handler())
		plain := httptest.NewServer(mux)
		defer plain.Close()
		b.mu.Lock()
		b.bases = append(b.bases, plain.URL)
		b.mu.Unlock()
		b.do(t, "open the experiments", chromedp.Navigate(plain.URL+"/#experiments"))
		b.wait(t, "the explanation", `document.querySelector("#exp-status").textContent.includes("Tracking is not configured")`)
		if vis := eval[bool](t, b, `!document.querySelector("#runs-scroll").hidden || !document.querySelector("#run").hidden`); vis {
			t.Error("the runs table or a run is shown without tracking")
		}
		// Classifying still works there.
		b.do(t, "classify", chromedp.Click(chromedp.CSS("#nav-classify")),
			chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{filepath.Join(images, "Bengal_1.jpg")}))
		b.wait(t, "the result", settled("Bengal_1.jpg"))
		if c := cardNamed(t, b, "Bengal_1.jpg"); len(c.Bars) == 0 || c.Bars[0] != "Bengal" {
			t.Errorf("bars %q error %q", c.Bars, c.Error)
		}
	})

	b.checkClean(t)
	t.Logf("browser suite took %v", time.Since(testStart).Round(time.Millisecond))
}

// TestBrowserBinary loads the page from the real `petbreed serve` binary on
// loopback (the champion of a real pipeline's store), classifies a real
// image in Chromium, then stops the server with SIGTERM.
func TestBrowserBinary(t *testing.T) {
	exe := findChromium(t)
	_, storeDir, _ := storeCopy(t)
	bin := filepath.Join(t.TempDir(), "petbreed")
	if out, err := exec.Command("go", "build", "-o", bin, "petbreed/cmd/petbreed").CombinedOutput(); err != nil {
		t.Fatalf("build petbreed: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var logs strings.Builder
	cmd := exec.Command(bin, "serve", "--addr", addr, "--poll", "0")
	cmd.Env = append(os.Environ(), "MLFLOW_TRACKING_URI=file://"+storeDir, "PETBREED_MODEL=")
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
		}
	})
	base := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/api/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("petbreed serve not ready after 30 s:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	b := newBrowser(t, exe, base)
	b.do(t, "open the page", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(1)), chromedp.Navigate(base+"/"))
	b.wait(t, "the model to be ready", `document.querySelector("#model-status").textContent.includes("ready")`)
	b.do(t, "choose an image", chromedp.SetUploadFiles(chromedp.CSS("#file"),
		[]string{testassets.Path(t, "pets-3breeds", "images", "Bengal_101.jpg")}))
	b.wait(t, "the result", settled("Bengal_101.jpg"))
	if c := cardNamed(t, b, "Bengal_101.jpg"); len(c.Bars) == 0 || c.Bars[0] != "Bengal" || c.Error != "" {
		t.Errorf("Bengal_101.jpg: bars %q error %q", c.Bars, c.Error)
	}
	b.do(t, "open the experiments", chromedp.Navigate(base+"/#experiments"))
	b.wait(t, "the runs", `document.querySelectorAll("#runs tbody tr").length >= 5`)

	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("petbreed serve after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("petbreed serve did not exit after SIGTERM")
	}
}
