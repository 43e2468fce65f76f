package server

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/orderstream/orderstream/pkg/order"
)

// BenchmarkDeliveryLatency measures the time from a transition's commit to its event
// arriving at watchers of the order over HTTP, through NOTIFY, the listener, the hub
// and the SSE stream. It reports the median and the 99th percentile; ns/op is the
// whole cycle of a transition and its delivery.
func BenchmarkDeliveryLatency(b *testing.B) {
	for _, watchers := range []int{1, 100} {
		b.Run(fmt.Sprintf("watchers=%d", watchers), func(b *testing.B) {
			app := newTestApp(b)
			var lat []time.Duration
			b.ResetTimer()
			for done := 0; done < b.N; {
				b.StopTimer()
				o := app.placeOrder(b, order.Delivery)
				conns := make([]*sseConn, watchers)
				for i := range conns {
					conns[i] = app.openStream(b, "/api/orders/"+o.ID+"/events", nil)
					conns[i].nextStatus(b, wait)
				}
				b.StartTimer()

				for _, to := range delivery {
					start := time.Now()
					if _, _, err := app.Store.TransitionOrder(b.Context(), o.ID,
						order.Transition{Status: to}); err != nil {
						b.Fatal(err)
					}
					var wg sync.WaitGroup
					for _, c := range conns {
						wg.Add(1)
						go func() {
							defer wg.Done()
							c.nextStatus(b, wait)
						}()
					}
					wg.Wait()
					lat = append(lat, time.Since(start))
					done++
				}
				b.StopTimer()
				for _, c := range conns {
					c.close()
				}
				b.StartTimer()
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "µs-median")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "µs-p99")
		})
	}
}
