// Follows one SSE stream with the eventsource package and prints one JSON line per
// event, then "closed" once the client has stopped for good (a 204 on reconnection).
import { EventSource } from 'eventsource';

const url = process.argv[2];
const es = new EventSource(url);
const print = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

es.addEventListener('open', () => print({ kind: 'open' }));
es.addEventListener('status', (e) => print({ kind: 'status', id: e.lastEventId, data: JSON.parse(e.data) }));
es.addEventListener('error', () => {
  if (es.readyState === EventSource.CLOSED) {
    print({ kind: 'closed' });
    process.exit(0);
  }
  print({ kind: 'reconnecting' });
});
