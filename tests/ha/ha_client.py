"""Talks to the Home Assistant Core that tests/it/home_assistant.rs starts
(`make test-ha`), with the venv's own aiohttp: no other package needed.

    ha_client.py setup URL BROKER_HOST BROKER_PORT USER PASSWORD
        onboards an owner, adds the MQTT integration for the broker, and
        prints an access token
    ha_client.py dump URL TOKEN
        prints one JSON object: the states, and the entity and device
        registries (entities of the mqtt platform with their options,
        where suggested_display_precision lives)
"""

import asyncio
import json
import sys

import aiohttp


async def setup(url, host, port, user, password):
    client_id = url + "/"
    async with aiohttp.ClientSession() as s:
        r = await s.post(
            f"{url}/api/onboarding/users",
            json={
                "client_id": client_id,
                "name": "Test",
                "username": "test",
                "password": "test-password-4711",
                "language": "en",
            },
        )
        r.raise_for_status()
        code = (await r.json())["auth_code"]
        r = await s.post(
            f"{url}/auth/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "client_id": client_id,
            },
        )
        r.raise_for_status()
        token = (await r.json())["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        r = await s.post(
            f"{url}/api/config/config_entries/flow",
            json={"handler": "mqtt"},
            headers=headers,
        )
        r.raise_for_status()
        flow = await r.json()
        r = await s.post(
            f"{url}/api/config/config_entries/flow/{flow['flow_id']}",
            json={
                "broker": host,
                "port": int(port),
                "username": user,
                "password": password,
            },
            headers=headers,
        )
        r.raise_for_status()
        result = await r.json()
        if result.get("type") != "create_entry":
            raise SystemExit(f"the MQTT integration was not added: {result}")
        print(token)


async def dump(url, token):
    ws_url = url.replace("http://", "ws://") + "/api/websocket"
    async with aiohttp.ClientSession() as s, s.ws_connect(ws_url) as ws:
        await ws.receive_json()  # auth_required
        await ws.send_json({"type": "auth", "access_token": token})
        ok = await ws.receive_json()
        if ok.get("type") != "auth_ok":
            raise SystemExit(f"websocket login failed: {ok}")
        next_id = 0

        async def call(message):
            nonlocal next_id
            next_id += 1
            await ws.send_json({"id": next_id, **message})
            while True:
                answer = await ws.receive_json()
                if answer.get("id") == next_id:
                    if not answer.get("success"):
                        raise SystemExit(f"{message}: {answer}")
                    return answer["result"]

        states = await call({"type": "get_states"})
        listed = await call({"type": "config/entity_registry/list"})
        entities = []
        for entry in listed:
            if entry.get("platform") == "mqtt":
                entities.append(
                    await call(
                        {
                            "type": "config/entity_registry/get",
                            "entity_id": entry["entity_id"],
                        }
                    )
                )
        devices = await call({"type": "config/device_registry/list"})
        print(json.dumps({"states": states, "entities": entities, "devices": devices}))


def main():
    command, args = sys.argv[1], sys.argv[2:]
    if command == "setup":
        asyncio.run(setup(*args))
    elif command == "dump":
        asyncio.run(dump(*args))
    else:
        raise SystemExit(__doc__)


main()
