"""Validation tickets: the customer's own words (subject, labels, body).

Written as a helpdesk receives them; ``assemble.py`` adds what mail clients and earlier
replies add (greetings, sign-offs, signatures, "Sent from my iPhone", quoted threads).
Labels: the intents the ticket asks for, space-separated; ``unknown`` for none.
"""

BODIES: list[tuple[str, str, str]] = [
    (
        "Order 48831 - cancel please",
        "cancel_order",
        """I placed an order this morning (48831) for the garden hose set and the watering can. My neighbour has just given me hers, so I don't need them anymore.

Can you cancel the order before it goes out? I haven't had a dispatch email yet so hopefully it's not too late.""",
    ),
    (
        "Where is my parcel??",
        "track_delivery",
        """Ordered a pair of running shoes on the 3rd, it said 2-3 working days. It's now the 11th and nothing. The tracking link just says "label created" and hasn't changed for a week.

I need them for a race on Sunday so I'm getting a bit anxious. Can you find out where it actually is?""",
    ),
    (
        "Can't log in",
        "login_problem",
        """Every time I try to sign in it says my account is temporarily locked. I haven't even tried that many times, maybe twice.

I also don't get the verification text message it talks about, my number is the same as always. Can you unlock it or tell me what to do?""",
    ),
    (
        "Refund not received",
        "request_refund",
        """hi, i sent back the blender 3 weeks ago, the courier tracking shows you got it on the 2nd. still no money on my card. your website says refunds take 5 days.

please can you check and send the refund, its £64.99""",
    ),
    (
        "Wrong size sent",
        "wrong_item",
        """I ordered the linen shirt in a medium (it says M on my order confirmation) but the one in the bag is an XXL. The packing slip even says M.

Not sure how that happened but I need the medium, it was for a wedding next weekend.""",
    ),
    (
        "Double charged!!",
        "unexpected_charge",
        """I've just looked at my bank app and you've taken £89.50 twice for the same order. I only clicked pay once. One of them has been there for 4 days now so it's not a pending thing.

Please sort this out, I'm now overdrawn because of it.""",
    ),
    (
        "vacuum stopped working",
        "broken_device",
        """Bought the cordless vacuum about two months ago. Since last week it cuts out after 30 seconds even when the battery shows full. I've cleaned the filter and the brush like the manual says, no difference.

Is there something else I can try or does it need looking at?""",
    ),
    (
        "Invoice for company expenses",
        "request_invoice",
        """Could I please get a proper VAT invoice for order 99120? I bought two monitors for the office and our finance team won't accept the order confirmation email.

It needs the company name on it: Harlow Design Ltd, 4 Mill Lane, Bristol BS1 4XE.""",
    ),
    (
        "Promo code",
        "discount_code_problem",
        """The code SPRING20 from your newsletter isn't working. It says "this code is not valid for the items in your basket" but the email says 20% off everything, no exclusions.

My basket is just a kettle and a toaster. Can you apply it manually or send me a code that works?""",
    ),
    (
        "Need to speak to someone",
        "human_agent",
        """I have been going back and forth with your chat bot for half an hour and it keeps sending me the same FAQ link. I need to talk to an actual person about my account.

Is there a phone number I can call? Or can someone call me back, my number is on the account.""",
    ),
    (
        "Parcel says delivered, it isn't",
        "missing_delivery",
        """Tracking for order 77342 says it was delivered yesterday at 14:12 and "left in a safe place". There is nothing here. I've checked the porch, the bins, the shed and asked both neighbours.

I work from home and was in all afternoon, nobody knocked. What happens now?""",
    ),
    (
        "Change of address",
        "change_delivery_address",
        """Hi, I've just realised my order (51209) is going to my old flat. I moved out last month and forgot to update it on the checkout page.

Could you change it to: 22 Beech Road, Flat 3, Manchester M14 6PL? It hasn't shipped yet according to my account.""",
    ),
    (
        "Delete my account",
        "delete_account",
        """Please close my account and delete all my personal data. I don't want to receive any more emails and I won't be shopping with you again.

I'd also like confirmation in writing once it's done, as is my right under GDPR.""",
    ),
    (
        "Subscription",
        "cancel_subscription",
        """I would like to end my coffee subscription. Not pause it, end it for good - we've bought a bean to cup machine and don't need the pods anymore.

Please make sure I'm not charged again on the 1st.""",
    ),
    (
        "holiday - skip deliveries",
        "pause_subscription",
        """We're away from 2 August until the 24th. Is it possible to put the veg box on hold for those weeks so it doesn't get left outside the house rotting?

We want it to carry on as normal once we're back.""",
    ),
    (
        "Back in stock?",
        "product_stock",
        """The trail backpack in olive green (the 35 litre one) has been out of stock for ages. Do you know when it's coming back?

The black one is available but I really want the green. Is there a way to get notified?""",
    ),
    (
        "Delivery to Ireland",
        "shipping_options_cost",
        """Do you ship to Ireland? And if so how much is it and how long does it usually take? I'm looking at ordering a rug which is quite heavy, about 12kg.

I couldn't find it anywhere on the delivery page, it only mentions UK mainland.""",
    ),
    (
        "Return",
        "return_item",
        """I'd like to return the coat I bought last week, it just doesn't suit me. Tags are still on and it's never been worn outside.

How do I go about sending it back? Do I need to print a label or is there a drop off option?""",
    ),
    (
        "swap for a bigger size",
        "exchange_item",
        """The walking boots are lovely but a bit tight, the 42 pinches my toes. Could I swap them for a 43?

I'd rather exchange than return as I really like them.""",
    ),
    (
        "Card declined",
        "payment_failed",
        """I've tried to pay for my order four times now and each time it says "payment could not be processed". My bank says there's no problem on their side and the card works everywhere else.

I also tried PayPal and it just sent me back to the basket. What's going on?""",
    ),
    (
        "Update card details",
        "update_payment_method",
        """My card expired last month and I got a new one from the bank. How do I change the saved card on my account? There's no edit button next to it.

I'd like to remove the old one completely and add the new Visa.""",
    ),
    (
        "Email address change",
        "update_account_details",
        """I'm no longer using my hotmail address. Can you change the email on my account to sarah.kemp.home@gmail.com?

I tried in the settings but it asks for a code sent to the old address which I can't access anymore.""",
    ),
    (
        "Forgot password",
        "reset_password",
        """I can't remember my password and the reset link you email me expires before it arrives, or at least it says "link expired" when I click it straight away.

Tried 3 times. Could you reset it for me or send a link that works?""",
    ),
    (
        "Mug arrived smashed",
        "damaged_item",
        """The box turned up this morning and you could hear it rattling. Two of the four mugs in the set were in pieces, and the handle on a third is cracked.

The outer box was crushed at one corner so I think it happened in transit. I've taken photos. What would you like me to do?""",
    ),
    (
        "Warranty",
        "warranty_claim",
        """My coffee grinder is 14 months old and the motor has died. I believe it came with a two year guarantee.

How do I make a claim? I have the receipt and the original box.""",
    ),
    (
        "Very disappointed",
        "complaint",
        """I want to make a formal complaint about the way I was spoken to by one of your delivery drivers today. He threw the parcel over my gate, and when I asked him to bring it to the door he swore at me in front of my kids.

This is not acceptable and I expect a response from someone senior.""",
    ),
    (
        "Change my order before it ships",
        "change_order",
        """I ordered 2 of the grey cushion covers but I actually need 4. Can you add two more to the same order so they come together?

Order number is 66013. Happy to pay the difference.""",
    ),
    (
        "quick question about my order",
        "unknown",
        """Do you have a shop in Leeds where I could see the sofas in person before buying? I'd like to check the colour of the fabric.

Also what are your opening hours over the bank holiday?""",
    ),
    (
        "Job application",
        "unknown",
        """Hello, I saw an advert for a warehouse operative position in your Daventry site and wanted to know if it's still open. I've attached my CV.

Could you pass this on to the right department?""",
    ),
    (
        "Partnership enquiry",
        "unknown",
        """I run a small candle business and wondered whether you'd consider stocking our products. We're handmade, soy based and already sold in 12 independent shops.

Who would be the best person to speak to about becoming a supplier?""",
    ),
    (
        "Assembly",
        "unknown",
        """Just wondering if the bookcase instructions are available online? I've lost the leaflet and I'm stuck at step 6 with the back panel.

Thanks in advance for any help.""",
    ),
    (
        "Feedback",
        "unknown",
        """Just wanted to say the new website is much easier to use than the old one, well done to whoever did it. Found what I needed in 2 minutes.

No action needed, just nice to give some good feedback for once!""",
    ),
    (
        "Refund AND new address",
        "request_refund change_delivery_address",
        """Two things. First, the charger I returned (order 40021) was received by you on Monday but I've not had my refund yet, can you push it through?

Second, for my other order that's still processing (40388), please send it to my work address instead: Unit 5, Canal Park, Leicester LE2 7TA. I won't be home that week.""",
    ),
    (
        "Broken + need invoice",
        "broken_device request_invoice",
        """The electric toothbrush I bought in March won't charge anymore. The light comes on when it's on the stand but the battery is dead every morning. It's the 3rd time I've had to complain about this brand.

Also, I never got an invoice for that order and I need one for my records. Can you email it over? Order number 31207.""",
    ),
    (
        "Cancel order and close account",
        "cancel_order delete_account",
        """Please cancel my order for the wooden toy kitchen, it was placed yesterday by mistake - my husband had already bought one.

And to be honest I'd like my account closed afterwards too, we keep getting duplicated orders because we share a login. Please delete it once the cancellation is done.""",
    ),
    (
        "tracking + discount",
        "track_delivery discount_code_problem",
        """Hi there, where's my order? It was supposed to come Tuesday and the tracking page just says "in transit" since Friday.

Also I forgot to put my birthday discount code in (BDAY15) when I ordered, is there any way you can still apply it and refund me the 15%?""",
    ),
    (
        "password and card",
        "reset_password update_payment_method",
        """I need to reset my password, I think someone might have been trying to get into my account as I've had weird emails about login attempts.

While I'm at it, I'd like to remove my debit card from the account completely and just use PayPal from now on.""",
    ),
    (
        "damaged and wrong colour",
        "damaged_item wrong_item",
        """The lamp arrived this afternoon. The shade has a big dent in it and the base is scratched all down one side.

On top of that it's the wrong colour - I ordered it in sage green and this is clearly grey. Not a great experience.""",
    ),
    (
        "Return and exchange",
        "return_item exchange_item",
        """From order 55780 I'd like to send back the navy jumper completely, I don't like the material.

The jeans in the same order are too long, could I swap those for the short leg version in the same waist? 32S instead of 32R.""",
    ),
    (
        "Skip box + change email",
        "pause_subscription update_account_details",
        """Can you skip my next two boxes? We're moving house and there'll be no one at either address for a bit.

And please change the email on the account to jon.reeve@outlook.com, the old one is my work email and I'm leaving that job.""",
    ),
    (
        "Payment failed, order stock?",
        "payment_failed product_stock",
        """Trying to buy the 4-slice toaster in cream but my payment keeps failing at the last step with an error code 402. Card is definitely fine.

In case I can't get it sorted today, will it still be in stock tomorrow? It says only 2 left.""",
    ),
    (
        "Charged after cancelling",
        "unexpected_charge complaint",
        """I cancelled my membership in January, I have the confirmation email. You've still taken £7.99 in February and March.

Frankly this is the second time this has happened and I'm fed up with chasing it. I want both payments back and I want to know why your system keeps doing this.""",
    ),
    (
        "Speak to a person re missing parcel",
        "missing_delivery human_agent",
        """My parcel was marked as delivered on Friday but it never came. The driver's photo shows a door that isn't mine - it's a red door, mine is white.

I'd really rather talk this through with someone on the phone than email back and forth. Can someone call me please?""",
    ),
    (
        "Order change + delivery cost",
        "change_order shipping_options_cost",
        """I just put through an order for the bathroom cabinet in white but I want it in oak instead, same size. Can that be changed before it goes?

Also, how much extra would it be to get it next day? The checkout only showed standard.""",
    ),
    (
        "Kettle broken under warranty",
        "broken_device warranty_claim",
        """Our kettle (bought from you last year) has started switching itself off before the water boils. Happens every time now.

It's still within the 2 year warranty so I'd like to claim under that. What do you need from me?""",
    ),
    (
        "Login + subscription cancel",
        "login_problem cancel_subscription",
        """I can't get into my account at all - it says "we don't recognise this email" but it's the one all your emails come to.

The reason I'm trying to log in is to cancel my wine club subscription. If you can just cancel it for me that would be easiest.""",
    ),
    (
        "Re: Your order has been dispatched",
        "track_delivery",
        """Thanks for the email but the tracking number doesn't work on the courier's website, it says not found. It's been 4 days.

Any idea when it'll actually arrive?""",
    ),
    (
        "wrong item!!!",
        "wrong_item",
        """opened the box and its someone elses order. a pair of kids wellies size 11. i ordered a bath mat. the name on the slip isnt mine either

i need my bath mat and you need to get these back to whoever they belong to""",
    ),
    (
        "refund timescale",
        "request_refund",
        """Your email said my return was accepted on the 12th. How long until the money goes back on my card? It's a credit card if that makes any difference.

Just want to know roughly when to expect it.""",
    ),
    (
        "Extremely poor service",
        "complaint",
        """I've been a customer for over 6 years and I have never had such a bad experience. Three emails, no reply. Two calls where I was on hold for 40 minutes and then got cut off.

I don't even care about the original issue at this point, I want someone to explain why your customer service is this bad.""",
    ),
    (
        "Can't use gift card",
        "discount_code_problem",
        """I got a £50 gift card for my birthday, but when I enter the number at checkout it just says "invalid". I've checked the number three times and scratched the panel properly.

It runs until December so it shouldn't have expired.""",
    ),
    (
        "Cancel",
        "cancel_order",
        """Hiya, can i cancel the order i made last night pls? number 30912. found the same thing cheaper locally, sorry!""",
    ),
    (
        "Next day to Scotland?",
        "shipping_options_cost",
        """Do you offer next day delivery to the Highlands (IV postcode)? Your site says next day for £5.99 but then at checkout it says 3-5 days.

I need the tent for a trip on Saturday so it matters which option I pick.""",
    ),
    (
        "Re: Re: return label",
        "return_item",
        """I still haven't received the returns label you said you'd send. Can you please send it again, or tell me how to return the dress without one?

The 30 days runs out this week.""",
    ),
    (
        "Change name on account",
        "update_account_details",
        """I got married recently and would like to update my surname on my account from Patel to Okafor. Also my phone number has changed, new one is 07700 900461.

Thank you!""",
    ),
    (
        "headphones - no sound left side",
        "broken_device",
        """The wireless headphones I bought a few weeks ago have started losing sound in the left ear. I've reset them twice and tried them with my phone and laptop. It crackles and then goes silent.

Can you help?""",
    ),
    (
        "My order",
        "change_delivery_address cancel_order",
        """Order 70233 is going to the wrong place, I typed my postcode wrong at checkout. It should be SW9 8JP not SW9 8PJ. Can you fix that before it ships?

And order 70240 - please cancel that one entirely, I clicked buy twice.""",
    ),
    (
        "Account locked and payment issue",
        "login_problem payment_failed",
        """Since yesterday I've been locked out of my account - it keeps asking for a verification code that never arrives.

I then tried to check out as a guest instead and the payment failed twice with 'transaction declined', even though the money has definitely not left my account. Starting to think I should just shop elsewhere.""",
    ),
    (
        "refund please",
        "request_refund",
        """The delivery for my sofa was cancelled by you (I got a text saying the item is discontinued). I paid £799 upfront.

I'd like that refunded in full as soon as possible please, to the card I paid with.""",
    ),
    (
        "Pause not cancel",
        "pause_subscription",
        """Is there any way of pausing the pet food subscription for a month? Our dog is staying with my parents while we have building work done.

Don't want to cancel as it took ages to set up the right food.""",
    ),
    (
        "Charged wrong amount",
        "unexpected_charge",
        """The product page said £34.99 but I've been charged £43.99 on my card. There was no delivery charge as it was over the free delivery threshold.

Can you explain the difference or refund the extra £9?""",
    ),
    (
        "exchange colour",
        "exchange_item",
        """I got the bedding set in white but it looks a lot more see-through than expected. Would it be possible to exchange it for the same set in grey?""",
    ),
    (
        "hi",
        "unknown",
        """is the black friday sale starting on thursday or friday this year? want to plan my shopping lol""",
    ),
    (
        "About my data",
        "delete_account",
        """Under GDPR I'm asking you to erase all data you hold on me: order history, addresses, payment details, marketing preferences. Please close the account too.

Let me know when this has been done.""",
    ),
    (
        "Long thread about the fridge",
        "missing_delivery complaint",
        """I'm writing again because nobody seems to be reading my emails. This is the fourth time I've explained this.

On the 2nd of the month I ordered a fridge freezer. I was given a delivery slot of 7am to 7pm on the 9th. I took a day off work. Nobody came. At 6:30pm the tracking changed to "delivered". I rang the courier, who told me to contact you. I contacted you, and you told me to contact the courier. Round and round.

It's now the 20th. I have no fridge freezer, I've been living out of a cool box, I've thrown away food, and I've lost a day's pay. The tracking still says delivered. Your last email told me to check with my neighbours. It is a fridge freezer. My neighbours do not have it.

I need to know where my fridge is, or I need it re-sent on a guaranteed date. And I want it on record that the way this has been handled is appalling.""",
    ),
    (
        "please call me",
        "human_agent",
        """I don't want to do this over email, it's about a sensitive issue on my account. Could someone from your customer service team give me a ring between 9 and 12 tomorrow? Number on the account.""",
    ),
    (
        "stock in store",
        "product_stock",
        """Have you got the Nova air fryer in the 5.5L size? The website says 'coming soon' but it said that 2 months ago. Will it actually come back?""",
    ),
    (
        "invoice + wrong item",
        "request_invoice wrong_item",
        """Please send a VAT receipt for order 81006, I need it for my self-assessment.

Also while I have you, one of the three items was wrong. I ordered the 10m extension lead and got a 5m one. Can you send the right one?""",
    ),
    (
        "Didn't order this",
        "unexpected_charge",
        """There's a charge from your company on my statement for £129 on 14 June. I haven't ordered anything from you since last year. Is this a mistake or has someone used my card?""",
    ),
    (
        "Parcel late and cancel subscription",
        "track_delivery cancel_subscription",
        """My last box still hasn't arrived - tracking stuck on "at local depot" since Wednesday. Can you chase it up?

And after this one, please cancel the subscription. The boxes keep turning up late and it's not working for us.""",
    ),
    (
        "Code didn't apply",
        "discount_code_problem",
        """I entered WELCOME10 at checkout and it showed the discount in the basket, but when I got the confirmation email I'd been charged full price. Can you refund the 10%?""",
    ),
    (
        "Order modification",
        "change_order",
        """Please can you remove the phone case from my order (61842)? I still want everything else. I've found out it doesn't fit my model.""",
    ),
    (
        "Damaged chair",
        "damaged_item return_item",
        """The dining chairs arrived today and one of them has a split in the seat, you can see the wood has cracked right through. The box wasn't even damaged so it must have been packed like that.

I'd like to send the whole set of four back - if one is like that I don't trust the others. How do I arrange a collection?""",
    ),
    (
        "re: missing",
        "missing_delivery",
        """Still no sign of the parcel. It's been 10 days since your courier said it was delivered. I've done everything you asked - checked with neighbours, looked around the building, spoken to the concierge. It's not here.""",
    ),
    (
        "Delivery options",
        "shipping_options_cost",
        """Is there a way to choose a delivery day? I'm out at work all week so weekdays are no good for a big parcel. Do you do Saturday delivery and how much is it?""",
    ),
    (
        "Login",
        "reset_password",
        """how do i change my password? i want to make it something more secure after that data leak in the news""",
    ),
    (
        "Re: Your warranty claim",
        "warranty_claim",
        """I sent the form and photos last week like you asked but I haven't heard anything. The projector is still under guarantee (bought Nov 2024), can you tell me the status of my claim?""",
    ),
    (
        "A question",
        "unknown",
        """Do you do price matching? I've seen the same TV for £50 less at another retailer. I haven't bought it yet, just asking before I decide.""",
    ),
    (
        "Thank you",
        "unknown",
        """Just wanted to say thanks to Priya in your chat team who helped me yesterday, she was lovely and sorted everything in five minutes. Please pass it on!""",
    ),
    (
        "Several issues with my account and last order",
        "update_account_details track_delivery",
        """I'll try to keep this short but there are a few things going on.

I recently changed jobs and I'm now working from a different city during the week, so I'd like my account to reflect that. Please update the phone number on my account to 07700 900338 and add my partner, Jess, as a second contact name if that's possible. If it isn't possible to add a second name, just the phone number is fine.

The other thing is that the order I placed on the 4th (the bookshelf and two lamps) still hasn't shown up. The confirmation email said 3-5 working days. I've had no dispatch email and the order page just says "processing", which is what it has said for nine days now. I don't know whether it's stuck, whether something is out of stock, or whether it has actually been sent and the tracking just hasn't been updated. I would just like to know when it's realistically going to arrive, because I've rearranged my weekend around being home for it once already.""",
    ),
    (
        "returns + refund for the bike",
        "return_item request_refund",
        """I bought the 26 inch mountain bike for my son's birthday last month and unfortunately it's too big for him, even with the seat all the way down. It's been ridden twice, round the garden, and it's still basically as new. I've kept the box.

I'd like to send it back. I know it's a large item, so I'm assuming you'll need to collect it? Please let me know what dates are possible.

I paid £329 on my credit card and I'd like the money back to that card rather than a gift card, because we'll be buying the smaller bike from a local shop that can fit it properly.""",
    ),
    (
        "Gift card and delivery to Spain",
        "discount_code_problem shipping_options_cost",
        """My gift card only covered part of my order and now the website won't let me use the remaining £12.40 balance - it says the card is empty.

Also, my sister lives in Spain, can I send a gift directly to her from your website? How much would that be?""",
    ),
    (
        "Cancel and speak to manager",
        "cancel_order human_agent",
        """Please cancel order 83321. I've been messed about enough with the delivery date.

And I'd like a manager to phone me, because I want to explain what's happened over the last three weeks to a person, not a form.""",
    ),
    (
        "kettle issue + invoice",
        "damaged_item request_invoice",
        """Kettle came with the lid hinge snapped off and a big dent in the side, the box had clearly been dropped.

Can you also email me the invoice for the order, my company is paying for it and they need it before they'll reimburse me.""",
    ),
    (
        "Stock + account update",
        "product_stock update_account_details",
        """Will the oak side table be back in stock before Christmas? I'd like two.

Also my address has changed - the new one is 5 Mill Street, Hebden Bridge HX7 8AA, please update it on my account.""",
    ),
    (
        "Update",
        "pause_subscription",
        """Can I pause the flower subscription please? Just for June, the house will be empty while we're away.""",
    ),
]
