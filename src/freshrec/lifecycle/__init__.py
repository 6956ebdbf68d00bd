"""The model lifecycle: train a candidate, gate it against the champion, promote or refuse."""
