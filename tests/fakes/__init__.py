"""Test doubles for the agent: a scripted chat model, a fake OpenAI-compatible server, a corpus."""
