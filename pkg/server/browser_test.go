package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"

	"github.com/orderstream/orderstream/pkg/order"
	"github.com/orderstream/orderstream/pkg/pgtest"
)

// The page tests drive the real pages in headless Chromium against the real server.

func TestBrowserPlaceOrder(t *testing.T) {
	app := newTestApp(t)
	tab := newBrowser(t)

	act(t, tab,
		chromedp.Navigate(app.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`.menu-item[data-pizza="margherita"]`)),
		chromedp.Click(chromedp.CSS(`.menu-item[data-pizza="margherita"] button[data-size="large"]`)),
		chromedp.Click(chromedp.CSS(`.menu-item[data-pizza="diavola"] button[data-size="small"]`)),
		chromedp.Click(chromedp.CSS(`.menu-item[data-pizza="margherita"] button[data-size="large"]`)),
	)
	// Two large Margheritas (15.00), a small Diavola (10.00) and the delivery fee (3.00).
	waitJS(t, tab, stepLimit, "the total",
		`document.querySelector("#total").textContent === "€43.00"`)

	act(t, tab,
		chromedp.SendKeys(chromedp.CSS("#customer_name"), "Ada Lovelace"),
		chromedp.SendKeys(chromedp.CSS("#phone"), "call me maybe"),
		chromedp.SendKeys(chromedp.CSS("#address"), "12 Analytical Row"),
	)
	screenshots(t, tab, "menu")

	// The server refuses the phone number: its message appears beside the field.
	act(t, tab, chromedp.Click(chromedp.CSS("#place-order")))
	waitJS(t, tab, stepLimit, "the phone error",
		`!document.querySelector("#phone-error").hidden &&
		 document.querySelector("#phone-error").textContent.includes("digits") &&
		 document.querySelector("#phone").getAttribute("aria-invalid") === "true"`)

	// And a quantity out of range, beside that line's quantity.
	setField(t, tab, "#phone", "+44 20 7946 0000")
	setField(t, tab, "#line-0-quantity", "25")
	act(t, tab, chromedp.Click(chromedp.CSS("#place-order")))
	waitJS(t, tab, stepLimit, "the quantity error",
		`!document.querySelector("#line-0-error").hidden &&
		 document.querySelector("#line-0-error").textContent.includes("Quantity") &&
		 document.querySelector("#phone-error").hidden`)

	setField(t, tab, "#line-0-quantity", "2")
	act(t, tab, chromedp.Click(chromedp.CSS("#place-order")))
	waitJS(t, tab, stepLimit, "the tracking page",
		`/^\/orders\/[0-9a-f-]{36}$/.test(location.pathname) &&
		 document.querySelector("#status-text").textContent === "We've got your order"`)

	id := strings.TrimPrefix(evalJS[string](t, tab, "location.pathname"), "/orders/")
	o, err := app.Store.FindOrderByID(context.Background(), id)
	if err != nil {
		t.Fatalf("the order the page placed: %v", err)
	}
	if o.CustomerName != "Ada Lovelace" || o.TotalCents != 4300 || o.Status != order.Placed {
		t.Errorf("stored order = %s, %d cents, %s; want Ada Lovelace, 4300, placed",
			o.CustomerName, o.TotalCents, o.Status)
	}
	waitJS(t, tab, stepLimit, "the order summary",
		`document.querySelector("#summary-total").textContent === "€43.00"`)
}

func TestBrowserTrackingFollowsStaffForm(t *testing.T) {
	app := newTestApp(t)
	o := app.placeOrder(t, order.Delivery)
	tracking := newBrowser(t)
	board := newTab(t, tracking)
	asStaff(t, board)

	act(t, tracking, chromedp.Navigate(app.URL+"/orders/"+o.ID))
	waitJS(t, tracking, stepLimit, "the live tracking page",
		trackingShows("placed")+` && document.querySelector("main").dataset.state === "live"`)
	act(t, board, chromedp.Navigate(app.URL+"/staff"))
	waitJS(t, board, stepLimit, "the live board",
		cardIn(o.ID, "placed")+` && document.querySelector("#board-page").dataset.state === "live"`)

	steps := []struct {
		status, note, words string
	}{
		{"preparing", "Extra basil today", "We're preparing your order"},
		{"baking", "", "In the oven"},
		{"ready", "", "Ready — waiting for the driver"},
		{"out_for_delivery", "Marco is on his way", "On its way"},
		{"delivered", "", "Delivered. Enjoy!"},
	}
	for _, step := range steps {
		card := "#order-" + o.ID
		if step.note != "" {
			act(t, board, chromedp.SendKeys(chromedp.CSS(card+` input[name="note"]`), step.note))
		}
		act(t, board, chromedp.Click(chromedp.CSS(card+` button[value="`+step.status+`"]`)))
		waitJS(t, tracking, liveLimit, "the tracking page to show "+step.status,
			trackingShows(step.status)+` && document.querySelector("#status-text").textContent === `+
				jsString(step.words))
		// The board moves the card too, so the next click finds it in its new column.
		waitJS(t, board, stepLimit, "the card in "+step.status, cardIn(o.ID, step.status))
		if step.status == "out_for_delivery" {
			screenshots(t, tracking, "tracking")
		}
	}

	want := wantHistory("placed", "preparing", "baking", "ready", "out_for_delivery", "delivered")
	if diff := cmp.Diff(want, historyOf(t, tracking)); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
	waitJS(t, tracking, stepLimit, "the final state",
		`document.querySelector("main").dataset.state === "finished" &&
		 document.querySelectorAll("#stages .stage-done time").length === 6 &&
		 document.querySelector("#announcer").textContent.includes("Delivered")`)
	notes := evalJS[[]string](t, tracking,
		`[...document.querySelectorAll("#history q")].map((q) => q.textContent)`)
	if diff := cmp.Diff([]string{"Extra basil today", "Marco is on his way"}, notes); diff != "" {
		t.Errorf("staff notes on the page (-want +got):\n%s", diff)
	}
}

func TestBrowserReloadResumes(t *testing.T) {
	app := newTestApp(t)
	o := app.placeOrder(t, order.Pickup)
	tab := newBrowser(t)

	act(t, tab, chromedp.Navigate(app.URL+"/orders/"+o.ID))
	waitJS(t, tab, stepLimit, "the live page", stateIs("live"))
	app.move(t, o.ID, order.Preparing)
	app.move(t, o.ID, order.Baking)
	waitJS(t, tab, liveLimit, "baking", trackingShows("baking"))
	before := historyOf(t, tab)

	// Watch the requests the reloaded page makes.
	var mu sync.Mutex
	var streams []string
	act(t, tab, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, network.Enable, network.EnableParams{})
		return err
	}))
	listenCtx, stopListening := context.WithCancel(tab)
	defer stopListening()
	if err := chromedp.Listen(listenCtx, func(ev any) {
		e, ok := ev.(*network.EventRequestWillBeSent)
		if ok && strings.Contains(e.Request.URL, "/events") {
			mu.Lock()
			streams = append(streams, e.Request.URL)
			mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}

	act(t, tab, chromedp.Reload())
	waitJS(t, tab, stepLimit, "the reloaded live page",
		trackingShows("baking")+` && document.querySelector("main").dataset.state === "live"`)
	if diff := cmp.Diff(before, historyOf(t, tab)); diff != "" {
		t.Errorf("history after reload (-before +after):\n%s", diff)
	}
	mu.Lock()
	got := slices.Clone(streams)
	mu.Unlock()
	wantURL := "/api/orders/" + o.ID + "/events?last_event_id=3"
	if len(got) == 0 || !strings.HasSuffix(got[0], wantURL) {
		t.Errorf("the reloaded page opened streams %q, want first one ending in %s", got, wantURL)
	}

	// The stream carries on from there, without repeating anything.
	app.move(t, o.ID, order.Ready)
	waitJS(t, tab, liveLimit, "ready", trackingShows("ready"))
	want := wantHistory("placed", "preparing", "baking", "ready")
	if diff := cmp.Diff(want, historyOf(t, tab)); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}

	// Once the order is finished, a reload shows its history and listens no more.
	app.move(t, o.ID, order.Delivered)
	waitJS(t, tab, liveLimit, "picked up", trackingShows("delivered"))
	act(t, tab, chromedp.Reload())
	waitJS(t, tab, stepLimit, "the finished page",
		`document.querySelector("main").dataset.state === "finished" &&
		 document.querySelector("#status-text").textContent === "Picked up. Enjoy!"`)
	want = wantHistory("placed", "preparing", "baking", "ready", "delivered")
	if diff := cmp.Diff(want, historyOf(t, tab)); diff != "" {
		t.Errorf("history of the finished order (-want +got):\n%s", diff)
	}
}

func TestBrowserReconnectsAfterRestart(t *testing.T) {
	databaseURL := pgtest.NewDatabase(t)
	srv := newProcess(t, databaseURL)
	srv.start()
	store := openStore(t, databaseURL)
	o := placeOrderAt(t, srv.URL)
	tab := newBrowser(t)

	act(t, tab, chromedp.Navigate(srv.URL+"/orders/"+o.ID))
	waitJS(t, tab, stepLimit, "the live page", stateIs("live"))
	moveInStore(t, store, o.ID, order.Preparing)
	waitJS(t, tab, liveLimit, "preparing", trackingShows("preparing"))

	// The server goes away: the page says so, and the kitchen carries on meanwhile.
	srv.stop()
	waitJS(t, tab, stepLimit, "the reconnecting banner",
		`document.querySelector("main").dataset.state === "reconnecting" &&
		 !document.querySelector("#connection").hidden &&
		 document.querySelector("#connection").textContent.includes("Reconnecting")`)
	moveInStore(t, store, o.ID, order.Baking)

	// Back again: the page catches up with what it missed and goes on live.
	srv.start()
	waitJS(t, tab, stepLimit, "the page back live",
		trackingShows("baking")+` && document.querySelector("main").dataset.state === "live" &&
		 document.querySelector("#connection").hidden`)
	for _, s := range []order.Status{order.Ready, order.OutForDelivery, order.Delivered} {
		moveInStore(t, store, o.ID, s)
		waitJS(t, tab, liveLimit, string(s), trackingShows(string(s)))
	}

	want := wantHistory("placed", "preparing", "baking", "ready", "out_for_delivery", "delivered")
	if diff := cmp.Diff(want, historyOf(t, tab)); diff != "" {
		t.Errorf("history across the restart (-want +got):\n%s", diff)
	}
	waitJS(t, tab, stepLimit, "the final state", stateIs("finished"))
}

func TestBrowserStaffBoardMovesLive(t *testing.T) {
	app := newTestApp(t)
	first := app.placeOrder(t, order.Delivery)
	watcher := newBrowser(t)
	mover := newTab(t, watcher)
	asStaff(t, watcher)
	asStaff(t, mover)

	for _, tab := range []context.Context{watcher, mover} {
		act(t, tab, chromedp.Navigate(app.URL+"/staff"))
		waitJS(t, tab, stepLimit, "the live board",
			cardIn(first.ID, "placed")+` && document.querySelector("#board-page").dataset.state === "live"`)
	}

	// A new order appears by itself.
	second := app.placeOrder(t, order.Pickup)
	waitJS(t, watcher, liveLimit, "the new order's card", cardIn(second.ID, "placed"))

	// Another tab moves an order: the card changes column here.
	act(t, mover, chromedp.Click(chromedp.CSS("#order-"+first.ID+` button[value="preparing"]`)))
	waitJS(t, watcher, liveLimit, "the card in preparing",
		cardIn(first.ID, "preparing")+` && !`+cardIn(first.ID, "placed"))
	waitJS(t, watcher, stepLimit, "the card's new buttons",
		`document.querySelector("#order-`+first.ID+` button[value='baking']") !== null`)

	// A card that still showed the old version (as if its update were in flight) gets a
	// clear message instead of overwriting the other tab's move.
	act(t, watcher, chromedp.SetAttributeValue(
		chromedp.CSS("#order-"+first.ID+` input[name="expected_version"]`), "value", "1"))
	act(t, watcher, chromedp.Click(chromedp.CSS("#order-"+first.ID+` button[value="baking"]`)))
	waitJS(t, watcher, stepLimit, "the stale message",
		`(document.querySelector("#order-`+first.ID+` .card-message") || {}).textContent ===
		 "Order #`+shortID(first.ID)+` was already moved to preparing by someone else; `+
			`the card shows its current state."`)
	got, err := app.Store.FindOrderByID(context.Background(), first.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != order.Preparing || got.Version != 2 {
		t.Errorf("after the stale form the order is %s v%d, want preparing v2", got.Status, got.Version)
	}

	// A move finishing an order puts its card in the final column, on both boards.
	act(t, mover, chromedp.Click(chromedp.CSS("#order-"+second.ID+` button[value="cancelled"]`)))
	waitJS(t, watcher, liveLimit, "the cancelled card", cardIn(second.ID, "cancelled"))
	waitJS(t, mover, stepLimit, "the mover's message",
		`document.querySelector("#board-messages").textContent.includes("moved to cancelled")`)
}

func TestBrowserBoardWithoutJavaScript(t *testing.T) {
	app := newTestApp(t)
	o := app.placeOrder(t, order.Delivery)
	tab := newBrowser(t)
	asStaff(t, tab)
	act(t, tab, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled,
			emulation.SetScriptExecutionDisabledParams{Value: true})
		return err
	}))

	card := "#order-" + o.ID
	act(t, tab,
		chromedp.Navigate(app.URL+"/staff"),
		chromedp.WaitVisible(chromedp.CSS(card)),
		chromedp.SendKeys(chromedp.CSS(card+` input[name="note"]`), "Fresh dough"),
		chromedp.Click(chromedp.CSS(card+` button[value="preparing"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-column="preparing"] `+card)),
	)
	msg := evalJS[string](t, tab, `document.querySelector("#board-messages").textContent.trim()`)
	if want := "Order #" + shortID(o.ID) + " moved to preparing."; msg != want {
		t.Errorf("message after the post = %q, want %q", msg, want)
	}
	loc := evalJS[string](t, tab, "location.pathname + location.hash")
	if loc != "/staff#order-"+o.ID {
		t.Errorf("after the post the browser is at %s, want /staff#order-%s", loc, o.ID)
	}

	// Someone else moves the order while this board shows the old card.
	app.move(t, o.ID, order.Baking)
	act(t, tab,
		chromedp.Click(chromedp.CSS(card+` button[value="baking"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-column="baking"] `+card)),
	)
	msg = evalJS[string](t, tab, `document.querySelector("#board-messages").textContent.trim()`)
	want := "Order #" + shortID(o.ID) + " was already moved to baking by someone else; " +
		"the board shows its current state."
	if msg != want {
		t.Errorf("message after a stale post = %q, want %q", msg, want)
	}
	events, err := app.Store.FindEvents(context.Background(), o.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 3 || events[1].Note != "Fresh dough" {
		t.Errorf("events = %+v, want placed, preparing (noted), baking", events)
	}
}

func TestBrowserRefusesCrossSiteForm(t *testing.T) {
	app := newTestApp(t)
	o := app.placeOrder(t, order.Delivery)

	// A page on another site (localhost, while the service is on 127.0.0.1) with a
	// form aimed at the staff board.
	action := app.URL + "/staff/orders/" + o.ID + "/transitions"
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>Win a pizza</title>
<form method="post" action="%s">
<input type="hidden" name="status" value="cancelled">
<input type="hidden" name="expected_version" value="1">
<button id="win">Claim your free pizza</button>
</form>`, action)
	}))
	defer evil.Close()
	evilURL := strings.Replace(evil.URL, "127.0.0.1", "localhost", 1)

	// The browser even holds the staff credentials: the post is refused all the same.
	tab := newBrowser(t)
	asStaff(t, tab)
	act(t, tab,
		chromedp.Navigate(evilURL),
		chromedp.Click(chromedp.CSS("#win")),
	)
	waitJS(t, tab, stepLimit, "the refusal",
		`location.href.startsWith(`+jsString(action)+`) &&
		 document.body.innerText.includes("sent from another site")`)

	got, err := app.Store.FindOrderByID(context.Background(), o.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != order.Placed || got.Version != 1 {
		t.Errorf("after the forged post the order is %s v%d, want placed v1", got.Status, got.Version)
	}
}

func TestBrowserUnknownOrder(t *testing.T) {
	app := newTestApp(t)
	tab := newBrowser(t)
	for _, id := range []string{"0b7e3f5c-4d1a-4c8e-9f2b-6a5d4c3b2a10", "not-an-order"} {
		act(t, tab, chromedp.Navigate(app.URL+"/orders/"+id))
		waitJS(t, tab, stepLimit, "the not-found message for "+id,
			`document.querySelector("main").dataset.state === "not-found" &&
			 !document.querySelector("#not-found").hidden`)
	}
}

// A busy evening on the board, with every column in use: checked, and photographed.
func TestBrowserBoardScene(t *testing.T) {
	app := newTestApp(t)
	scene := []struct {
		name, phone, address string
		items                []map[string]any
		path                 []order.Status
	}{
		{"Grace Hopper", "+1 555 0100", "", []map[string]any{
			{"pizza": "funghi", "size": "medium", "quantity": 1}}, nil},
		{"Alan Turing", "07700 900123", "4 Bletchley Lane", []map[string]any{
			{"pizza": "capricciosa", "size": "large", "quantity": 1},
			{"pizza": "marinara", "size": "small", "quantity": 2}}, []order.Status{order.Preparing}},
		{"Katherine Johnson", "+1 555 0199", "7 Orbit Way", []map[string]any{
			{"pizza": "quattro_formaggi", "size": "large", "quantity": 3}},
			[]order.Status{order.Preparing, order.Baking}},
		{"Edsger Dijkstra", "+31 20 555 0000", "", []map[string]any{
			{"pizza": "margherita", "size": "small", "quantity": 1}},
			[]order.Status{order.Preparing, order.Baking, order.Ready}},
		{"Ada Lovelace", "+44 20 7946 0000", "12 Analytical Row", []map[string]any{
			{"pizza": "diavola", "size": "medium", "quantity": 2}},
			[]order.Status{order.Preparing, order.Baking, order.Ready, order.OutForDelivery}},
		{"Barbara Liskov", "+1 555 0142", "", []map[string]any{
			{"pizza": "margherita", "size": "large", "quantity": 1}},
			[]order.Status{order.Preparing, order.Baking, order.Ready, order.Delivered}},
		{"Donald Knuth", "+1 555 0173", "", []map[string]any{
			{"pizza": "marinara", "size": "medium", "quantity": 1}}, []order.Status{order.Cancelled}},
	}
	want := map[string]int{}
	for _, o := range scene {
		body := map[string]any{"customer_name": o.name, "phone": o.phone,
			"fulfillment": order.Pickup, "items": o.items}
		if o.address != "" {
			body["fulfillment"], body["address"] = order.Delivery, o.address
		}
		resp, data := app.do(t, "POST", "/api/orders", body, nil)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("place %s's order: %d %s", o.name, resp.StatusCode, data)
		}
		var placed orderView
		if err := json.Unmarshal(data, &placed); err != nil {
			t.Fatal(err)
		}
		status := order.Placed
		for _, s := range o.path {
			app.move(t, placed.ID, s)
			status = s
		}
		want[string(status)]++
	}

	tab := newBrowser(t)
	asStaff(t, tab)
	act(t, tab, chromedp.Navigate(app.URL+"/staff"))
	waitJS(t, tab, stepLimit, "the live board", `document.querySelector("#board-page").dataset.state === "live"`)
	got := evalJS[map[string]int](t, tab, `Object.fromEntries([...document.querySelectorAll(".column")]
		.map((c) => [c.dataset.column, c.querySelectorAll(".order-card").length])
		.filter(([, n]) => n > 0))`)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("cards per column (-want +got):\n%s", diff)
	}
	screenshots(t, tab, "staff")
}
