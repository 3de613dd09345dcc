"""Test tickets: the customer's own words (subject, labels, body). Never tuned on.

Written as a helpdesk receives them; ``assemble.py`` adds what mail clients and earlier
replies add. Labels: the intents the ticket asks for, space-separated; ``unknown`` for none.
"""

BODIES: list[tuple[str, str, str]] = [
    (
        "cancel my order",
        "cancel_order",
        """Hello, I ordered a duvet yesterday evening (order 20987) but I've just seen the reviews and it sounds like it's really thin. I'd like to cancel it please before it gets sent.

Let me know if you need anything else from me.""",
    ),
    (
        "Order not arrived",
        "track_delivery",
        """Hi, my order from last Thursday still hasn't turned up. I paid for express delivery which was meant to be 1-2 days. Tracking hasn't updated since Saturday morning ("out for delivery") and then nothing.

Could you let me know what's happening with it?""",
    ),
    (
        "Account access",
        "login_problem",
        """I keep getting "something went wrong, please try again later" when I log in on the app. On the website it just loops back to the login page without any message. I've cleared my cache and tried two browsers.

I'm trying to check an order so it's a bit urgent.""",
    ),
    (
        "Money back",
        "request_refund",
        """The chest of drawers I ordered was cancelled because you couldn't deliver to my area, which is fine, but I've not seen the £240 back on my account and it's been 9 days.

Can you confirm the refund has actually been processed?""",
    ),
    (
        "Not what I ordered",
        "wrong_item",
        """I ordered a 6-piece saucepan set and you've sent me a single frying pan. Completely different product, different box, different price. The order number on the label is right though, 45512.

Could you send what I actually paid for?""",
    ),
    (
        "Strange payment on my card",
        "unexpected_charge",
        """There's a payment to your company on my credit card for £15.00 that I don't recognise. I haven't made an order in months and there's nothing in my order history.

Please could you check what it is for?""",
    ),
    (
        "Speaker faulty",
        "broken_device",
        """The bluetooth speaker keeps disconnecting from every device I pair it with, sometimes every couple of minutes. Also the volume buttons don't do anything anymore. Bought it in April.

I've done a factory reset as per the leaflet. Still the same.""",
    ),
    (
        "Receipt needed",
        "request_invoice",
        """I need a copy of the receipt for my washing machine purchase from last October for an insurance claim. I can't find the email anywhere.

The order would be under this email address. Would really appreciate it as soon as you can.""",
    ),
    (
        "Voucher issue",
        "discount_code_problem",
        """I was given a £10 voucher as an apology for a late delivery last month. When I try to use it now, it says it's already been redeemed. I definitely haven't used it.

Can you have a look?""",
    ),
    (
        "real person please",
        "human_agent",
        """Can I please speak to someone in customer services? Your automated replies don't answer my question and the chat closes before anyone picks up. I've waited on the chat queue three times this week.""",
    ),
    (
        "Parcel stolen?",
        "missing_delivery",
        """The courier says my parcel was handed to a resident at number 14. I live at number 41. Number 14 says they've received nothing. I've been waiting for this since the 2nd.

So the parcel is basically lost. What are you going to do about it?""",
    ),
    (
        "Deliver to my work instead",
        "change_delivery_address",
        """My order 67011 is due Thursday, but I've realised I won't be home at all that day. Could it be redirected to my office? Address is: Brightwell Accountants, 12 King Street, Reading RG1 2HE.""",
    ),
    (
        "close account",
        "delete_account",
        """i'd like my account removed entirely please. i've had too many marketing emails even after unsubscribing, and i just don't want you having my details anymore""",
    ),
    (
        "End membership",
        "cancel_subscription",
        """I'd like to cancel my Premium membership, effective from the end of this billing period. I don't use the free delivery enough to make it worth it.

Please confirm I won't be charged the annual renewal in September.""",
    ),
    (
        "Hold deliveries for a month",
        "pause_subscription",
        """Can you put my meal kit deliveries on hold for four weeks? I'm going into hospital for an operation and won't be cooking for a while. I'd like to start again in March.""",
    ),
    (
        "When will you have it",
        "product_stock",
        """The kids' bike helmet in the small size is showing "out of stock" in every colour. Are you expecting more soon? My son starts cycling lessons in three weeks.""",
    ),
    (
        "International delivery",
        "shipping_options_cost",
        """I live in Germany. Can I order from your site and have it delivered here? What would the postage be for a parcel of about 3kg and roughly how many days would it take?

Also will I have to pay any import fees?""",
    ),
    (
        "returns",
        "return_item",
        """hi what's your returns policy for sale items? I bought a pair of trainers in the sale and they're not right, can I still send them back?""",
    ),
    (
        "Different size please",
        "exchange_item",
        """I received the school trousers today but they're too small. Could I exchange them for age 9-10 rather than 8-9? I'll send these ones back unworn.""",
    ),
    (
        "Can't complete payment",
        "payment_failed",
        """Each time I try to check out, the 3D secure window pops up and then it goes blank and the order fails. I've tried my phone and my laptop. The card is fine, I used it an hour ago elsewhere.

I really need to get this ordered today.""",
    ),
    (
        "Change payment method",
        "update_payment_method",
        """How do I update the card that my subscription gets paid from? I've got a new bank account and want the payments to come from that card from now on.""",
    ),
    (
        "Update my phone number",
        "update_account_details",
        """Could you update the mobile number on my account? The old one (07700 900222) is no longer in use. New number is 07700 900817. Also please remove the old address in Luton, I don't live there anymore.""",
    ),
    (
        "Reset link not working",
        "reset_password",
        """I requested a password reset about five times today and not one email has come through. Checked spam and junk. Can you send it again or reset it for me?""",
    ),
    (
        "Damaged in delivery",
        "damaged_item",
        """Our new mirror arrived this morning with the glass cracked right across the middle. The box had a big hole in the side like it had been dropped on something.

I haven't unpacked it fully in case you need to see it as it came. Please advise.""",
    ),
    (
        "guarantee on my microwave",
        "warranty_claim",
        """Is my microwave still covered by the manufacturer's guarantee? I bought it from you in 2024, it was the Elton model. It's started sparking inside and I'd like to get it repaired or replaced under the warranty if I can.""",
    ),
    (
        "Not happy",
        "complaint",
        """I'm writing to complain about the customer service I received on the phone yesterday. The person I spoke to was rude, talked over me and then hung up when I asked for a manager.

I've spent thousands with you over the years and I expected much better.""",
    ),
    (
        "Add something to my order",
        "change_order",
        """Hiya, is it possible to change the mattress size on my order from double to king? I only placed it 20 minutes ago. Order ref 88231.""",
    ),
    (
        "Recycling",
        "unknown",
        """Do you take back old electrical items for recycling when you deliver a new one? We're getting rid of an old dishwasher and I'm not sure what to do with it.""",
    ),
    (
        "Affiliate programme",
        "unknown",
        """I have a home and interiors blog with about 40k monthly readers. Do you run an affiliate or influencer programme? I'd love to feature some of your furniture.""",
    ),
    (
        "recipe question",
        "unknown",
        """The meal kit from last week had a recipe for Thai green curry which was amazing. Is there a way I can get the recipe card again? I threw it away by mistake.""",
    ),
    (
        "Careers",
        "unknown",
        """Are you hiring for Christmas temp jobs at the Northampton warehouse? I worked there last year through an agency and really enjoyed it.""",
    ),
    (
        "Cancel order and refund",
        "cancel_order request_refund",
        """Please cancel order 91042, it's been 'processing' for 12 days and I can't wait any longer. I need it sooner than that.

I paid by card, so please make sure the full amount comes back to me and not as store credit.""",
    ),
    (
        "Two problems",
        "damaged_item change_delivery_address",
        """The side table from my last order arrived with one leg snapped off. Packaging was fine so I'm guessing it was like that when it was packed. I'll send photos if you need them.

Separately, my next order (34419) needs to go to my mum's address as I'm staying with her for a few weeks: 8 Orchard Close, Taunton TA1 3LL.""",
    ),
    (
        "tracking and invoice",
        "track_delivery request_invoice",
        """Where is my office chair? Order placed 8 days ago and the estimated date has come and gone.

Also could you send me an invoice with VAT shown for the same order please, it's a business purchase.""",
    ),
    (
        "password + email",
        "reset_password update_account_details",
        """I'd like to reset my password please, I've forgotten it.

And once I'm back in, the email on the account needs changing to my new one - tom.hardacre@protonmail.com. The old gmail is getting closed down.""",
    ),
    (
        "broken and want to talk to someone",
        "broken_device human_agent",
        """My robot vacuum has stopped charging, it just beeps three times when it goes on the dock. It's six weeks old.

I've emailed twice already and I'd really like to speak to a real person about this now, can you give me a phone number or call me back?""",
    ),
    (
        "Refund for return + change card",
        "request_refund update_payment_method",
        """When will I get my refund for the jacket I sent back? Royal Mail says you received it a week ago.

Also, I'd like to delete the Mastercard saved on my account. I've cancelled that card so there's no point it being there.""",
    ),
    (
        "subscription + stock",
        "pause_subscription product_stock",
        """Could you pause my shampoo subscription for a couple of months? I've still got loads left.

Also, is the lavender conditioner ever coming back in stock? I'd add it to the subscription if it did.""",
    ),
    (
        "Charged twice and can't log in",
        "unexpected_charge login_problem",
        """My bank statement shows two payments of £22.50 on the same day for one order.

I wanted to check my order history to see what's going on but my account says 'locked, too many attempts' and won't let me in.""",
    ),
    (
        "Wrong item and exchange",
        "wrong_item exchange_item",
        """You sent a blue raincoat, but I ordered yellow. I'll need that sorting.

And the wellies in the same order fit but are a bit big, could I swap them for a size 5 when you send the right coat?""",
    ),
    (
        "Discount code + shipping question",
        "discount_code_problem shipping_options_cost",
        """My free delivery code FREESHIP isn't doing anything at checkout, it still adds £4.95.

And also, do you have a click and collect option? If so that would solve my problem anyway.""",
    ),
    (
        "Missing parcel and complaint",
        "missing_delivery complaint",
        """My parcel is marked delivered but I never received it. This is the third time this has happened with your courier in two months.

I want to complain about this, I'm fed up of chasing missing orders every time I buy something from you.""",
    ),
    (
        "Order amendment + cancellation of sub",
        "change_order cancel_subscription",
        """Can I change the colour of the throw in my order to the mustard one? Order 73110, just placed.

And please cancel my monthly candle subscription, I've got more candles than I know what to do with!""",
    ),
    (
        "Return + warranty",
        "return_item warranty_claim",
        """I'd like to return the hair straighteners I bought last week, unopened, they were a duplicate present.

Separately, the hair dryer I bought from you 18 months ago has stopped heating. Is that still under your 2-year warranty?""",
    ),
    (
        "payment keeps failing",
        "payment_failed",
        """Trying to order the garden furniture set but payment fails every time with 'your payment was declined by the issuer'. My bank says they've approved it on their end.

Could you check if there's a problem on your side? It's the last one in stock and I don't want to lose it.""",
    ),
    (
        "Where's my stuff",
        "track_delivery",
        """order 58820 - estimated delivery was yesterday, nothing came, no emails, no tracking update. can you tell me where it is""",
    ),
    (
        "Refund query",
        "request_refund",
        """I returned a pair of boots two weeks ago. I received an email saying the return was processed but only £45 was refunded instead of £60. Where's the other £15?""",
    ),
    (
        "Parcel says delivered to safe place",
        "missing_delivery",
        """It says my parcel was left in my "designated safe place", but I haven't set one and nothing's at my door, in my porch or in the garden. Can you help find it?""",
    ),
    (
        "Unacceptable",
        "complaint",
        """Your delivery driver drove over my front lawn and left tyre tracks all over it, then left the parcel in the rain. I'd like to make a formal complaint. I have CCTV footage if needed.""",
    ),
    (
        "My password",
        "reset_password",
        """Please can you help me reset my password, I've tried the forgot password button but I don't get any email from you""",
    ),
    (
        "Amend order quantity",
        "change_order",
        """I accidentally ordered 10 packs of the printer paper instead of 1. Please change it to a single pack, I definitely don't need ten. Order 11290.""",
    ),
    (
        "Gift message",
        "unknown",
        """Is it possible to include a handwritten gift message with my order? It's a present for my grandmother's 90th birthday.""",
    ),
    (
        "Thanks so much",
        "unknown",
        """Just a quick note to say the sofa arrived today and it's perfect. The delivery men were polite and careful. Really happy!""",
    ),
    (
        "Delete my data",
        "delete_account",
        """Please remove my account and all associated data. I'm moving abroad and won't be using the service. I don't need any confirmation emails apart from one final one saying it's done.""",
    ),
    (
        "Sizes in stock?",
        "product_stock",
        """Hi, I can only see sizes S and XL for the green wrap dress. Will the M be restocked any time soon? It's for an event in July.""",
    ),
    (
        "exchange",
        "exchange_item",
        """the coffee machine i got is the black one but i wanted the silver to match my kitchen. is it possible to exchange it for the silver version? it's still boxed""",
    ),
    (
        "invoice",
        "request_invoice",
        """Please send an invoice for order 14411 to accounts@marlowbuilders.co.uk. We need the company's VAT number on it and the invoice number. Thanks.""",
    ),
    (
        "The tablet I bought",
        "broken_device",
        """The tablet freezes every time I open more than one app and then restarts itself. It was brand new three weeks ago. I've updated the software and reset it to factory settings, still freezes.""",
    ),
    (
        "Arrived damaged AGAIN",
        "damaged_item complaint",
        """This is the second replacement plant pot that has arrived shattered. The packing is just a thin bag inside a cardboard box, no padding at all. Obviously it's going to break.

I'm really unhappy with how this has been dealt with. Nobody seems to care whether it arrives in one piece.""",
    ),
    (
        "What does delivery cost",
        "shipping_options_cost",
        """How much is delivery for a sofa? The basket page doesn't show it until I enter my card details, which I'm not doing until I know the cost.""",
    ),
    (
        "Can't get into my account and need to update card",
        "login_problem update_payment_method",
        """The app says 'session expired' every time I log in, and the website won't accept my password even though I reset it this morning.

Once I'm in, I need to change my payment card - the old one was stolen and has been cancelled.""",
    ),
    (
        "Order 40922",
        "cancel_order",
        """Hi, please cancel the whole of order 40922. I've been told it won't arrive until after Christmas and that's no good to me.""",
    ),
    (
        "Pause please",
        "pause_subscription",
        """Can I skip next month's box? We have too much already. I'll carry on after that, just don't send the one due on the 5th.""",
    ),
    (
        "Subscription refund",
        "cancel_subscription request_refund",
        """I cancelled my fruit box subscription last month through the website but I've still been charged for this month's box (which never arrived, because I cancelled!).

Please make sure the subscription is definitely cancelled this time, and refund me the £24.""",
    ),
    (
        "wrong address + track",
        "change_delivery_address track_delivery",
        """Can you update the delivery address on order 22013? I put flat 2 instead of flat 12.

Also, a different order (21887) has been 'awaiting courier' for a week. When will that one arrive?""",
    ),
    (
        "Discount not applied",
        "discount_code_problem",
        """The sale price was showing as £35 on the product page but at checkout it went back to £50. The page said "sale ends midnight" and it was 9pm.""",
    ),
    (
        "Need human help",
        "human_agent",
        """I need to talk to an actual human being about my order, not a bot, not an FAQ. Please ask someone to phone me on 07700 900555 today.""",
    ),
    (
        "Wrong colour",
        "wrong_item",
        """I ordered the velvet armchair in navy and what came is bright teal. I know colours can look different on screen, but this is obviously a completely different colour code on the label.""",
    ),
    (
        "Item broken on arrival and I'd like a replacement",
        "damaged_item exchange_item",
        """The glass coffee table arrived with a chip in the corner and a crack running along the edge.

Rather than a refund I'd like to swap it for a new one, I really like the design. Can you send another?""",
    ),
    (
        "Missing item from order and can't apply promo",
        "missing_delivery discount_code_problem",
        """One of my two parcels never turned up - the tracking for the second one says delivered on Monday but nothing came.

Also, my promo code for 15% off didn't work on that order. Can the discount be added back?""",
    ),
    (
        "Payment failed, now charged",
        "payment_failed unexpected_charge",
        """Yesterday my payment failed at checkout three times with an error, so I gave up. This morning I see three pending charges of £56 on my account.

I don't even have an order confirmation. What's going on?""",
    ),
    (
        "long one, sorry",
        "return_item complaint",
        """I'm sorry this is a long email but I want to explain everything so I don't have to repeat myself.

I ordered a dining table on 1 March. It was delivered on 14 March, two days late, which I didn't mind too much. When the delivery team brought it in, they were in a rush, didn't take their shoes off although I asked, and left the packaging all over my hallway. They were gone before I'd even checked it.

When I did check it, I found that the table is much smaller than the dimensions on your website. The website says 180cm, it's 160cm. I measured three times. I understand this might be a website error, but it means the table doesn't fit what we need - we have a family of six.

So I'd like to return it, and I'd like to know how that works for a large item like this - will you collect it, and when?

I also want to make a complaint about the delivery team. I felt quite uncomfortable with how they behaved and I don't think it's the way your company wants to be represented.""",
    ),
    (
        "Re: update on my order?",
        "track_delivery",
        """You said on Monday that my order would be dispatched within 48 hours. It's now Friday and it still says 'preparing'. When is it actually going to be sent?""",
    ),
    (
        "promo",
        "discount_code_problem",
        """code STUDENT10 says expired but your page says valid until end of year???""",
    ),
    (
        "ticket for warranty repair",
        "warranty_claim",
        """My dishwasher is still under warranty (2 years, bought 10 months ago) and it's leaking from the bottom of the door. How do I book a repair under the warranty?""",
    ),
    (
        "Reduce my order",
        "change_order",
        """Please take the extra set of pillowcases off order 92011 - I only need the duvet cover and the fitted sheet. Thank you.""",
    ),
    (
        "Fitness tracker not syncing + support",
        "broken_device",
        """My fitness tracker stopped syncing to the app two days ago. The screen also goes blank randomly, even when it's fully charged. I've reinstalled the app and re-paired it, but nothing has helped.""",
    ),
    (
        "Close account and delete card",
        "delete_account update_payment_method",
        """Before you close my account, please make sure my card details are removed from your system, I don't want them stored anywhere.

And yes, please close the account itself - I'm not going to be ordering again.""",
    ),
    (
        "Delivery times",
        "shipping_options_cost",
        """If I order by 2pm today, will it arrive tomorrow with standard delivery, or do I need to pay for express? What are the cut-off times?""",
    ),
    (
        "What's happening with my refund",
        "request_refund",
        """It's been over a month since you confirmed my refund for the cancelled order. My bank says nothing has come in from you. Please send me proof it was sent, or send it again.""",
    ),
    (
        "Lost parcel + speak to supervisor",
        "missing_delivery human_agent",
        """My parcel has been "delivered" according to your system, but I have nothing. I've already done everything your email said. I'd like to speak to a supervisor on the phone about this, please call me back.""",
    ),
    (
        "New address on account",
        "update_account_details",
        """I moved house last month. Please update my default address on my account to 3 Heather Way, York YO10 5DD, and remove the old one.""",
    ),
    (
        "Locked out",
        "login_problem",
        """I can't log into my account, it says that my account has been disabled. I have no idea why. I've never had a problem before. Can you re-enable it?""",
    ),
    (
        "Change to express",
        "shipping_options_cost change_order",
        """How much would it cost to upgrade my order to next-day delivery? And can you please also swap the blue towels in that order for the grey ones?""",
    ),
    (
        "Stock question",
        "product_stock",
        """Do you have more of the ceramic planters coming in? I want to buy six but the site only lets me add two.""",
    ),
    (
        "broken screen",
        "damaged_item",
        """I've just unpacked my new monitor and the screen is cracked in the bottom corner. Box looks fine from the outside, so it's hard to say when it happened.""",
    ),
    (
        "Three weeks and still waiting",
        "track_delivery complaint",
        """I have honestly never had this much trouble getting a simple order delivered.

I ordered the bedside tables on the 28th of last month. They were in stock, the website said delivery in 5-7 days. On day 8 I emailed to ask where they were and got an automatic reply with a case number. On day 10 someone called Jamie told me they were "in transit" and would be with me in 2-3 days. On day 14 I emailed again, and was told the courier had "no record" of the parcel but that a new one would be sent. Since then I've heard nothing at all.

It's now three weeks. I have nowhere to put anything in my bedroom, I've taken time off twice for deliveries that never came, and every time I contact you I get a different story.

So, two things. Please tell me where my order actually is, with a real tracking number. And I want this treated as a formal complaint - the communication has been terrible from start to finish.""",
    ),
    (
        "Missing refund and cancel membership",
        "request_refund cancel_subscription",
        """Still waiting on my refund for the returned speaker (sent back over two weeks ago, you've signed for it).

And while I'm emailing, please cancel my Homestead Plus membership. I signed up for the free delivery but I've barely used it.""",
    ),
    (
        "Broken toaster + change email",
        "broken_device update_account_details",
        """The toaster only heats on one side now, the left slot doesn't get warm at all. It's about five months old.

Also please update the email address on my account to ruth.m.ellis@gmail.com. I can't do it myself, the page gives me an error.""",
    ),
    (
        "wrong item + need a call",
        "wrong_item human_agent",
        """I've been sent the wrong fridge. I ordered the 60cm freestanding one and you've delivered a 55cm integrated one, which doesn't fit the space at all.

Given the size of it I'd like to arrange this over the phone with someone, please call me.""",
    ),
    (
        "Ordering for my office",
        "shipping_options_cost request_invoice",
        """We're thinking of ordering 12 office chairs. Do you offer a delivery service that brings them upstairs (2nd floor, no lift)? What does that cost?

Also, I need an invoice for the two chairs we ordered last month as a test, order 55092, with our company name.""",
    ),
    (
        "Reset password, can't pay",
        "reset_password payment_failed",
        """I've forgotten my password and need a new one.

I tried to order as a guest in the meantime but the payment gets rejected every time with 'unable to process payment', even with two different cards.""",
    ),
    (
        "Damaged rug",
        "damaged_item",
        """The rug arrived today with a big oily black mark right in the middle and a tear along one edge. It looks like it was dragged along a warehouse floor. I've kept all the packaging and taken pictures.""",
    ),
    (
        "holiday hold and stock question",
        "pause_subscription product_stock",
        """Please can you hold our dog food deliveries during August - we'll be away all month.

Also is the grain-free salmon recipe coming back? It's been out of stock for weeks and our dog won't eat the others.""",
    ),
]
