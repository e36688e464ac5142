"""Voight's clients: the Claude Code hook, install-hooks, doctor and the Python SDK.

Standard library only, and cheap to import: `voight hook` runs for every Claude Code event,
so nothing here may import at package import time. The SDK is used as

    from voight.client import sdk as voight

    voight.log("tool_use", metadata={"sessionId": "run-42"}, tool_name="search")
    with voight.start_session(goal="triage the inbox", agent_id="mailbot") as s:
        s.log("tool_use", tool_name="search")
        s.set_metrics({"goal_completed": True, "score": 0.9})
"""
