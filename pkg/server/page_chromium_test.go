package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// chromiumPath is the browser the page tests drive.
const chromiumPath = "/usr/bin/chromium"

// Time limits of the browser tests. A step is one action (a click, a navigation);
// liveLimit is how soon a change must show on a page that listens to a stream.
const (
	stepLimit  = 20 * time.Second
	liveLimit  = 2 * time.Second
	startLimit = time.Minute
)

// newBrowser starts a headless Chromium with a fresh profile and returns the context
// of its first tab. The browser stops when the test ends.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("the page tests need Chromium at %s (apt-get install chromium): %v",
			chromiumPath, err)
	}
	profile, err := os.MkdirTemp("", "orderstream-chromium-")
	if err != nil {
		t.Fatal(err)
	}

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(profile),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		// Tabs in the background keep their timers and streams at full speed.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.WindowSize(1280, 900),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		_ = os.RemoveAll(profile)
	})

	// The first run starts the browser; it must not carry a timeout, which would stop
	// the browser with it.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	watchConsole(t, ctx)
	return ctx
}

// newTab opens another tab in the browser of ctx.
func newTab(t *testing.T, browser context.Context) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	watchConsole(t, ctx)
	return ctx
}

// watchConsole fails the test if a page of the tab throws an uncaught exception or
// breaks its Content-Security-Policy. Network errors are expected (the tests stop
// servers and ask for unknown orders) and pass.
func watchConsole(t *testing.T, tab context.Context) {
	t.Helper()
	var mu sync.Mutex
	var bad []string
	messages := chromedp.Console(tab)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() || m.Source == "security" ||
				strings.Contains(m.Text, "Content Security Policy") {
				mu.Lock()
				bad = append(bad, fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line))
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range bad {
			t.Errorf("browser console: %s", m)
		}
	})
}

// asStaff makes every request of the tab carry the staff token as HTTP Basic
// credentials, as a browser does once someone has signed in to the board.
func asStaff(t *testing.T, tab context.Context) {
	t.Helper()
	creds := base64.StdEncoding.EncodeToString([]byte("kitchen:" + testToken))
	act(t, tab, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		_, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
			Headers: network.Headers{"Authorization": "Basic " + creds},
		})
		return err
	}))
}

// run runs steps in the tab, each step within stepLimit.
func act(t *testing.T, tab context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	for i, step := range steps {
		ctx, cancel := context.WithTimeout(tab, stepLimit)
		err := chromedp.Do(ctx, step)
		cancel()
		if err != nil {
			t.Fatalf("browser step %d of %d: %v", i+1, len(steps), err)
		}
	}
}

// eval evaluates a JavaScript expression in the tab and decodes its value.
func evalJS[T any](t *testing.T, tab context.Context, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, stepLimit)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitUntil polls a JavaScript condition in the tab until it holds, failing the test
// with what after limit.
func waitJS(t *testing.T, tab context.Context, limit time.Duration, what, cond string) {
	t.Helper()
	if err := pollJS(tab, limit, cond); err != nil {
		t.Fatalf("waiting %s for %s (%s): %v\npage state: %s", limit, what, cond, err,
			pageState(tab))
	}
}

// pollUntil polls a JavaScript condition until it holds or limit passes. A navigation
// in the meantime ends a poll inside the page, so it starts again in the new page.
func pollJS(tab context.Context, limit time.Duration, cond string) error {
	deadline := time.Now().Add(limit)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return chromedp.ErrPollingTimeout
		}
		// The context outlives the poll a little, so that the page's own timeout reports.
		ctx, cancel := context.WithTimeout(tab, left+5*time.Second)
		_, err := chromedp.Run(ctx, chromedp.Poll[bool]("!!("+cond+")",
			chromedp.WithPollingTimeout(left),
			chromedp.WithPollingInterval(25*time.Millisecond)))
		cancel()
		if err == nil || errors.Is(err, chromedp.ErrPollingTimeout) || tab.Err() != nil {
			return err
		}
		// The page went away under the poll (a navigation or reload): look again.
		select {
		case <-tab.Done():
			return tab.Err()
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// pageState describes the tab for a failure message.
func pageState(tab context.Context) string {
	ctx, cancel := context.WithTimeout(tab, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + " " +
		JSON.stringify((document.querySelector("main") || {}).dataset || {}) + "\n" +
		(document.body ? document.body.innerText.slice(0, 1500) : "")`))
	if err != nil {
		return "(unavailable: " + err.Error() + ")"
	}
	return s
}

// jsString quotes s for a JavaScript expression.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// setField sets an input's value as typing would, input event included.
func setField(t *testing.T, tab context.Context, selector, value string) {
	t.Helper()
	evalJS[bool](t, tab, fmt.Sprintf(`(() => {
		const el = document.querySelector(%s);
		el.value = %s;
		el.dispatchEvent(new Event("input", {bubbles: true}));
		return true;
	})()`, jsString(selector), jsString(value)))
}

// historyOf reads the tracking page's history: "version:status" per line shown.
func historyOf(t *testing.T, tab context.Context) []string {
	t.Helper()
	return evalJS[[]string](t, tab, `[...document.querySelectorAll("#history li")]
		.map((li) => li.dataset.version + ":" + li.className.replace(/.*history-/, ""))`)
}

// wantHistory is the history a tracking page shows for statuses reached in order.
func wantHistory(statuses ...string) []string {
	var h []string
	for i, s := range statuses {
		h = append(h, fmt.Sprintf("%d:%s", i+1, s))
	}
	return h
}

// screenshotDir is the ignored folder at the root of the repository where the page
// tests leave their screenshots.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for !pathExists(filepath.Join(dir, "go.mod")) {
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
	return filepath.Join(dir, "screenshots")
}

func pathExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// screenshots saves the tab's page at a phone's and at a desktop's width, as
// screenshots/<name>-phone.png and <name>-desktop.png, and puts the desktop viewport
// back.
func screenshots(t *testing.T, tab context.Context, name string) {
	t.Helper()
	dir := screenshotDir(t)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	sizes := []struct {
		suffix string
		view   chromedp.Action[chromedp.Void]
	}{
		{"phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(2))},
		{"desktop", chromedp.EmulateViewport(1280, 900)},
	}
	for _, size := range sizes {
		act(t, tab, size.view, chromedp.Poll[chromedp.Void](`document.fonts.status === "loaded"`,
			chromedp.WithPollingTimeout(5*time.Second)))
		ctx, cancel := context.WithTimeout(tab, stepLimit)
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		cancel()
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		path := filepath.Join(dir, name+"-"+size.suffix+".png")
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// cardIn is a JavaScript condition: the order's card is in the status's column.
func cardIn(id, status string) string {
	return fmt.Sprintf(`document.querySelector('[data-column="%s"] #order-%s') !== null`,
		status, id)
}

// stateIs is a JavaScript condition: the page's main element is in the state (the
// tracking page: loading, live, reconnecting, finished or not-found).
func stateIs(state string) string {
	return `document.querySelector("main").dataset.state === ` + jsString(state)
}

// trackingShows is a JavaScript condition: the tracking page shows the status.
func trackingShows(status string) string {
	return fmt.Sprintf(`document.querySelector("main").dataset.status === %s`,
		jsString(status))
}
