"""vLLM's own throughput for the same token ids that `score --server` sends: the inputs of a
JSON-lines file rendered with the model card's template and tokenised as the Rust client does
(BOS, no EOS, left truncation to --max-tokens), then sent to POST /pooling in batches, with a
given number of requests in flight. Prints one JSON line: pairs, seconds, pairs per second.
"""

import argparse
import asyncio
import json
import time

import aiohttp
from tokenizers import Tokenizer

HEAD = (
    "[INST] You must read the following conversation carefully and rate the assistant's "
    "response from score 0-100 in these aspects: helpfulness, correctness, coherence, honesty, "
    "complexity, verbosity\n\nUser: "
)
MIDDLE = "\n\nAssistant: "
TAIL = " [/INST]"


def ids_of(tok, prompt, response, max_tokens, bos=1):
    ids = tok.encode(HEAD + prompt + MIDDLE + response + TAIL, add_special_tokens=False).ids
    keep = max_tokens - 1
    return [bos] + ids[-keep:]


async def run(url, batches, in_flight, model):
    queue = list(reversed(batches))
    async with aiohttp.ClientSession() as session:

        async def worker():
            while queue:
                batch = queue.pop()
                body = {"model": model, "input": batch, "use_activation": False}
                async with session.post(url + "/pooling", json=body) as r:
                    answer = await r.json()
                    assert len(answer["data"]) == len(batch), answer

        await asyncio.gather(*(worker() for _ in range(in_flight)))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--server", required=True)
    p.add_argument("--model", required=True, help="the name the server serves the model under")
    p.add_argument("--tokenizer", required=True)
    p.add_argument("--input", required=True)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--in-flight", type=int, default=4)
    p.add_argument("--max-tokens", type=int, default=512)
    a = p.parse_args()
    tok = Tokenizer.from_file(a.tokenizer)
    ids = []
    with open(a.input) as f:
        for line in f:
            if line.strip():
                d = json.loads(line)
                ids.append(ids_of(tok, d["prompt"], d["response"], a.max_tokens))
    batches = [ids[i : i + a.batch] for i in range(0, len(ids), a.batch)]
    t = time.perf_counter()
    asyncio.run(run(a.server.rstrip("/"), batches, a.in_flight, a.model))
    s = time.perf_counter() - t
    print(json.dumps({"pairs": len(ids), "seconds": s, "pairs_per_s": len(ids) / s,
                      "requests_per_s": len(batches) / s}))


if __name__ == "__main__":
    main()
