"""The harness images an engine holds, with their labels."""

from __future__ import annotations

from harness.containers.images import KIND_LABEL, LABEL_PREFIX


def list_images(client=None, untagged: bool = False) -> list[dict]:
    """One dict per tagged image labelled ``org.harness.kind``: tags, id, created, size, labels.

    ``untagged=True`` adds the images a rebuild left without a tag (layers of older builds).
    """
    from harness.containers.engine import connect

    client = client or connect()
    rows = []
    for image in client.images.list(filters={"label": KIND_LABEL}):
        if not image.tags and not untagged:
            continue
        labels = image.labels or {}
        rows.append(
            {
                "tags": ",".join(image.tags) or "<none>",
                "id": image.short_id.split(":", 1)[-1],
                "kind": labels.get(KIND_LABEL),
                "torch": labels.get(LABEL_PREFIX + "torch"),
                "variant": labels.get(LABEL_PREFIX + "torch-variant"),
                "base": labels.get(LABEL_PREFIX + "base"),
                "created": image.attrs.get("Created", "")[:19],
                "size_mb": round(image.attrs.get("Size", 0) / 1e6),
            }
        )
    return sorted(rows, key=lambda r: (r["kind"] or "", r["tags"]))
