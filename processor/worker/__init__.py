"""The stream worker: pipeline (translate, publish, batch, ack), policy reload, health, runner."""
