"""``modelport publish``: upload a ported folder and its model card to the Hub."""

from __future__ import annotations

import argparse

from modelport.cli.card import add_card_options, card_options
from modelport.cli.common import add_command
from modelport.cli.printing import publish_summary
from modelport.cli.streams import print_json
from modelport.generation.options import positive_float


DESCRIPTION = """\
Regenerate the model card (in memory; PORTED_DIR is not modified) with REPO_ID in its usage, create
REPO_ID if needed and upload every file in one commit; conversion.json and the reports go up as
copies with local paths reduced to file names. PORTED_DIR may also be a `modelport export hf`
folder: its card is regenerated from the port it came from, with transformers usage. A README.md
modelport did not write is kept unless --force: the folder's is uploaded as it is, and one on the
Hub that differs from the card to upload stops the upload before anything is committed. The token comes
from HF_TOKEN or `hf auth login` and is never printed. Hub failures exit 2."""  # argparse re-flows it


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``publish``."""
    p = add_command(sub, "publish", run, help="upload a ported folder and its model card to the Hub",
                    description=DESCRIPTION,
                    ported_dir="a ported folder, or a folder written by `modelport export hf`")
    p.add_argument("repo_id", help="NAMESPACE/NAME on the Hub")
    p.add_argument("--private", action="store_true", help="create the repository as private")
    p.add_argument("--revision", help="existing branch to commit to (default: main)")
    p.add_argument("--commit-message", help="commit message (default: names the folder and modelport version)")
    p.add_argument("--dry-run", action="store_true",
                   help="contact nothing; list the files (size, sha256, path) that would be uploaded")
    p.add_argument("--endpoint", metavar="URL", help="Hub endpoint (default: HF_ENDPOINT or huggingface.co)")
    p.add_argument("--timeout", type=positive_float, metavar="SECONDS",
                   help="give up when the endpoint leaves a request unanswered this long "
                        "(default: MODELPORT_HUB_TIMEOUT, else 30)")
    p.add_argument("--force", action="store_true",
                   help="upload the generated card even where a README.md modelport did not write is in "
                        "PORTED_DIR or on the Hub (by default the folder's is uploaded as it is, and one on the "
                        "Hub that differs stops the upload)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_card_options(p)


def run(args: argparse.Namespace) -> int:
    """Publish (or, with ``--dry-run``, list what would be uploaded)."""
    from modelport.hub import publish  # lazy: imports torch

    result = publish(args.ported_dir, args.repo_id, private=args.private, revision=args.revision,
                     commit_message=args.commit_message, dry_run=args.dry_run, endpoint=args.endpoint,
                     timeout=args.timeout, force=args.force, **card_options(args))
    if args.json:
        print_json(result)
    else:
        publish_summary(result, args.repo_id, args.private, args.dry_run)
    return 0
