"""Synapse's state resolution as an oracle for Tandem's tests.

Reads one JSON object per line on stdin: {"version", "events": [PDUs with "event_id"],
"resolutions": [[state set, ...], ...]} where a state set is a list of [type, state_key,
event_id]. Writes one JSON line per input: the resolved state of each resolution, as sorted
[type, state_key, event_id] lists. Every event is handed to Synapse as not yet persisted, so
Synapse's own code computes auth chains, the auth difference and the conflicted subgraph.
"""

import asyncio
import json
import logging
import sys

import synapse.storage  # noqa: F401  (imported first: it breaks an import cycle of synapse.state)
from synapse.api.room_versions import KNOWN_ROOM_VERSIONS
from synapse.events import make_event_from_dict
from synapse.state import v2
from synapse.storage.databases.main.event_federation import StateDifference

logging.disable(logging.CRITICAL)


class Clock:
    async def sleep(self, duration):
        pass


class Store:
    """Nothing is persisted: every event is in the event map."""

    def __init__(self, events):
        self.events = events

    async def get_events(self, event_ids, allow_rejected=False):
        return {i: self.events[i] for i in event_ids if i in self.events}

    async def get_auth_chain_difference(self, room_id, state_sets, conflicted_state, additional):
        return StateDifference(
            auth_difference=set(),
            conflicted_subgraph=set() if conflicted_state is not None else None,
        )


def main():
    for line in sys.stdin:
        case = json.loads(line)
        version = KNOWN_ROOM_VERSIONS[case["version"]]
        events = {}
        for pdu in case["events"]:
            given = pdu.pop("event_id")
            event = make_event_from_dict(pdu, version)
            if event.event_id != given:
                raise SystemExit(f"event id mismatch: synapse {event.event_id}, given {given}")
            events[given] = event
        room_id = next(iter(events.values())).room_id
        results = []
        for sets in case["resolutions"]:
            state_sets = [{(t, k): i for t, k, i in s} for s in sets]
            resolved = asyncio.run(
                v2.resolve_events_with_store(Clock(), room_id, version, state_sets, dict(events), Store(events))
            )
            results.append(sorted([t, k, i] for (t, k), i in resolved.items()))
        print(json.dumps(results), flush=True)


if __name__ == "__main__":
    main()
