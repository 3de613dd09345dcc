"""Assemble the bundled ticket sets from the customers' own words.

    python scripts/tickets/assemble.py   # writes intents/eval/tickets_{val,test}.jsonl

Each body (``bodies_val.py``, ``bodies_test.py``, written by hand) gets what a mail
client and an email thread add, chosen by a seeded random generator so the files are
reproducible: sometimes a greeting line, usually a sign-off and a name (sometimes a
phone number or a "--" signature block), sometimes "Sent from my iPhone", and for about
a third the earlier mails of the thread quoted below ("> " lines after "On ... wrote:",
or Outlook's "From: / Sent:" block without quote marks). The quoted mails are the
shop's own replies (templated, as shops send them) and sometimes the customer's earlier
message about something else; a router that reads them routes the wrong request.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bodies_test import BODIES as TEST  # noqa: E402
from bodies_val import BODIES as VAL  # noqa: E402

OUT = HERE.parent.parent / "intents" / "eval"

GREETINGS = [
    "Hi,",
    "Hello,",
    "Hi there,",
    "Dear Customer Services,",
    "Good morning,",
    "Hey,",
    "To whom it may concern,",
    "Hi team,",
    "Dear Sir/Madam,",
    "Hello Customer Care team,",
]
SIGN_OFFS = [
    "Thanks,",
    "Thank you,",
    "Kind regards,",
    "Best regards,",
    "Regards,",
    "Cheers,",
    "Many thanks,",
    "Best,",
    "Thanks in advance,",
    "Sincerely,",
]
NAMES = [
    "Anna",
    "Mark Ellis",
    "Priyanka Shah",
    "J. Morgan",
    "Tom",
    "Claire Dubois",
    "Kwame Mensah",
    "Sue",
    "Liam O'Connor",
    "Hannah Webb",
    "Dave",
    "Fatima Rahman",
    "Gareth Jones",
    "Mei Lin",
    "Rob & Julie",
    "Olu Adeyemi",
]
SIGNATURE_BLOCKS = [
    "--\n{name}\nOperations Manager | Brightside Dental\nT: 0117 496 0123\nwww.brightsidedental.co.uk",
    "-- \n{name}\nSent on the go, please excuse typos",
    "--\n{name}\nHead of Facilities, Calder & Finch LLP\nThis email and any attachments are "
    "confidential and intended solely for the addressee.",
]
BOILERPLATE = [
    "Sent from my iPhone",
    "Sent from my Samsung Galaxy smartphone.",
    "Get Outlook for Android",
    "Sent from Mail for Windows",
    "Sent from my iPad",
]
SHOP = "Homestead Customer Care <care@homestead-shop.co.uk>"
DATES = [
    "Mon, 3 Mar 2026 at 09:14",
    "Tue, 11 Feb 2026 at 16:40",
    "Wed, 7 Jan 2026 at 11:02",
    "Fri, 20 Mar 2026 at 08:55",
    "Thu, 30 Apr 2026 at 13:27",
]
SHOP_REPLIES = [
    """Thank you for contacting Homestead Customer Care.

We have received your message and a member of our team will get back to you within 2 working days. Your case reference is HC-{case}.

In the meantime, you may find the answer to your question in our Help Centre, where you can track your order, start a return or request a refund online.

Kind regards,
Homestead Customer Care""",
    """Hi {first},

Thanks for getting in touch. I'm sorry to hear your order hasn't arrived yet. I've checked with our courier and they have confirmed that your parcel is in transit and should be with you within the next 2-3 working days.

If it hasn't arrived by then, please reply to this email and we'll look into it further.

Best wishes,
Jamie
Homestead Customer Care""",
    """Dear {first},

Good news - your order has been dispatched! You can track your parcel using the link in your account under "My orders". Please allow up to 24 hours for tracking information to appear.

Need to make a change? Unfortunately once an order has been dispatched we are unable to amend or cancel it, but you can return any item within 30 days for a full refund.

Thanks for shopping with us,
The Homestead Team""",
    """Hello {first},

Thank you for your email. We've received your returned item and it is now being inspected by our returns team. Once this is complete, your refund will be issued to your original payment method. Please allow 5-7 working days for the money to appear in your account.

If you have any other questions, just reply to this email.

Kind regards,
Priya
Homestead Customer Care""",
    """Hi {first},

Thank you for your patience while we looked into this. I'm afraid I need a little more information before I can help: could you please send us your order number and, if possible, a photo of the item and the packaging?

Once we have these we will be able to arrange the next steps for you.

Many thanks,
Sam
Homestead Customer Care""",
]
EARLIER_CUSTOMER = [
    "Hi, could you tell me when my order will be delivered? It's been a week. Thanks",
    "Hello, I'd like to return the lamp I bought last month please. How do I get a label?",
    "Can you cancel my subscription please? I'm not using it anymore.",
    "Hi, my discount code didn't work, can you help?",
]
POLICY = """Our returns policy: you can return most items within 30 days of delivery for a full refund, provided they are unused and in their original packaging. Some items, such as personalised goods, mattresses that have been unwrapped and perishable goods, cannot be returned unless faulty. For large items we will arrange a collection; a collection charge of £15 may apply unless the item is faulty or we sent you the wrong item. Refunds are issued to the original payment method within 14 days of us receiving the item. If you paid with a gift card, your refund will be issued as a new gift card. For faulty items outside the 30 day window, please see our warranty page, where you can register a claim with the manufacturer or with us, depending on the product. Delivery charges are refunded only when the whole order is returned within 30 days or the item was faulty."""


def _quoted(lines: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in lines.splitlines())


def _thread(rng: random.Random, first: str, subject: str, long: bool) -> str:
    replies = rng.sample(SHOP_REPLIES, 2 if long else 1)
    reply = "\n\n".join(r.format(first=first, case=rng.randint(100000, 999999)) for r in replies)
    if long:
        reply += "\n\n" + POLICY
    earlier = rng.choice(EARLIER_CUSTOMER) if rng.random() < 0.5 or long else ""
    date = rng.choice(DATES)
    style = rng.choice(["gmail", "gmail", "outlook", "original"])
    if style == "gmail":
        text = f"On {date}, {SHOP} wrote:\n{_quoted(reply)}"
        if earlier:
            text += f"\n>\n> On {rng.choice(DATES)}, {first} wrote:\n{_quoted(_quoted(earlier))}"
        return text
    header = (
        f"From: {SHOP}\nSent: {date}\nTo: {first.lower()}@example.com\nSubject: {subject}"
    )
    if style == "original":
        header = "-----Original Message-----\n" + header
    else:
        header = "________________________________\n" + header
    text = f"{header}\n\n{reply}"
    if earlier:
        text += f"\n\n-----Original Message-----\nFrom: {first}\nSent: {rng.choice(DATES)}\n\n{earlier}"
    return text


def _ticket(rng: random.Random, subject: str, body: str) -> tuple[str, str]:
    name = rng.choice(NAMES)
    first = name.split()[0].rstrip(".")
    parts = []
    short = len(body.split()) < 20  # a short mail still has its greeting or sign-off
    if (short or rng.random() < 0.55) and not body.lower().startswith(("hi", "hello", "hey")):
        parts.append(rng.choice(GREETINGS))
    parts.append(body)
    roll = 0.0 if short else rng.random()
    if roll < 0.6:
        closing = f"{rng.choice(SIGN_OFFS)}\n{name}"
        if rng.random() < 0.25:
            closing += f"\n07700 900{rng.randint(100, 999)}"
        parts.append(closing)
    elif roll < 0.72:
        parts.append(rng.choice(SIGNATURE_BLOCKS).format(name=name))
    elif roll < 0.85:
        parts.append(name)
    if rng.random() < 0.2:
        parts.append(rng.choice(BOILERPLATE))
    reply = rng.random() < 0.35
    if reply:
        subject = "Re: " + subject
        parts.append(_thread(rng, first, subject, long=rng.random() < 0.3))
    return subject, "\n\n".join(parts)


def _write(bodies: list[tuple[str, str, str]], prefix: str, path: Path, seed: int) -> None:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as out:
        for number, (subject, labels, body) in enumerate(bodies, start=1):
            subject, text = _ticket(rng, subject, body)
            record = {
                "id": f"{prefix}{number:03d}",
                "subject": subject,
                "text": text,
                "labels": labels.split(),
            }
            out.write(json.dumps(record, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    _write(VAL, "tv", OUT / "tickets_val.jsonl", seed=17)
    _write(TEST, "tt", OUT / "tickets_test.jsonl", seed=1717)
