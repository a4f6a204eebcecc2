"""The prompt/response pairs of the trained-weight accuracy table (`accuracy_trained.py`).

`PAIRS` and `MORE_PAIRS` (72 pairs) were the whole set until 2026-12-04; `EXTRA_PAIRS` makes 360.
Each prompt has three answers of differing quality: a good one, a wrong or unhelpful one, and a
terse or rambling one, in no fixed order.
"""

PAIRS = [
    ("What are some synonyms for the word \"beautiful\"?",
     ["Nicely, Beautifully, Handsome, Stunning, Wonderful, Gorgeous, Pretty, Stunning, Elegant",
      "Some synonyms are gorgeous, lovely, stunning, attractive, pretty and elegant. \"Exquisite\" "
      "suits fine detail, and \"striking\" suits something that catches the eye.",
      "Ugly."]),
    ("How do I reverse a list in Python?",
     ["Use `my_list.reverse()` to reverse it in place, or `my_list[::-1]` to get a reversed copy. "
      "`reversed(my_list)` gives an iterator if you only need to loop backwards.",
      "You can't reverse lists in Python; convert it to a string first.",
      "my_list[::-1]"]),
    ("Explain why the sky is blue in two sentences.",
     ["Sunlight is scattered by the molecules of the air, and short blue wavelengths scatter far "
      "more than long red ones (Rayleigh scattering). So blue light reaches our eyes from every "
      "direction of the sky.",
      "The sky is blue because it reflects the ocean.",
      "Because of physics, light and stuff like that, it is basically just blue because the air "
      "is blue and that is what colour it is, so the sky looks blue to everybody every day."]),
    ("Write a haiku about autumn.",
     ["Crimson leaves drifting\nthe old maple lets them go\ncool wind keeps the count",
      "Autumn is a season that comes after summer and before winter, when leaves fall.",
      "leaves fall down\nit is cold\nautumn autumn autumn autumn"]),
    ("What is the capital of Australia?",
     ["The capital of Australia is Canberra, chosen in 1908 as a compromise between Sydney and "
      "Melbourne.",
      "Sydney.",
      "Canberra."]),
    ("Give me three tips for sleeping better.",
     ["1. Keep a regular schedule, even at weekends. 2. Avoid screens and caffeine in the evening. "
      "3. Keep the bedroom dark, quiet and cool.",
      "Just sleep more. If that doesn't work, try harder.",
      "Drink a strong coffee right before bed so that your body gets tired of being awake."]),
    ("Summarise the plot of Romeo and Juliet in one paragraph.",
     ["Two young lovers from feuding families in Verona, Romeo Montague and Juliet Capulet, marry "
      "in secret. After Romeo kills Juliet's cousin Tybalt he is banished; Juliet fakes her death "
      "to escape an arranged marriage, but the message explaining the plan never reaches Romeo, "
      "who poisons himself at her tomb. Juliet wakes, finds him dead and stabs herself, and their "
      "deaths reconcile the families.",
      "Romeo and Juliet fall in love and live happily ever after in Paris.",
      "It's a play by Shakespeare."]),
    ("How many legs does a spider have?",
     ["Spiders have eight legs, which sets them apart from insects, which have six.",
      "Six, like all insects.",
      "A spider has 8 legs."]),
]

# 16 more prompts (48 pairs): with 24 pairs one discordant pair moves τ by 0.007 and the smallest
# of ten attributes' τ sits about 0.03 below their mean, more than the gaps between the modes.
MORE_PAIRS = [
    ("What is 15% of 80?",
     ["15% of 80 is 12, since 0.15 × 80 = 12.",
      "15% of 80 is 15.",
      "12"]),
    ("How do I boil an egg so the yolk stays soft?",
     ["Lower the egg into boiling water, cook it for six to seven minutes, then put it in cold "
      "water for a minute to stop the cooking. The white sets and the yolk stays runny.",
      "Boil it for twenty minutes so that it is safe to eat.",
      "Cook it less."]),
    ("Translate \"good morning\" into French.",
     ["\"Bonjour\" is the usual greeting; \"bon matin\" is heard in Quebec.",
      "\"Buenos días.\"",
      "Bonjour."]),
    ("What causes the seasons on Earth?",
     ["The Earth's axis is tilted by about 23.5 degrees, so through the year each hemisphere in "
      "turn leans towards the Sun and gets more direct sunlight and longer days: that is summer.",
      "The seasons happen because the Earth is closer to the Sun in summer and farther in winter.",
      "The tilt of the Earth."]),
    ("Write a polite email declining a meeting invitation.",
     ["Dear Ms Patel,\n\nThank you for the invitation to Thursday's planning meeting. I am "
      "unable to attend because of an earlier commitment, but I would be glad to read the notes "
      "and send my comments by Friday.\n\nKind regards,\nSam",
      "No, I won't come to your meeting.",
      "Dear team, I can't make it. Sam"]),
    ("What is the difference between weather and climate?",
     ["Weather is the state of the atmosphere at a given time and place: today's rain or "
      "tomorrow's heat. Climate is the average of the weather over decades in a region.",
      "They are the same thing; climate is just the scientific word for weather.",
      "Weather is short term, climate is long term."]),
    ("Name three primary colours.",
     ["In painting the traditional primary colours are red, yellow and blue; for light they are "
      "red, green and blue.",
      "Green, orange and purple.",
      "Red, yellow, blue."]),
    ("How can I make my password more secure?",
     ["Make it long (a passphrase of four or more random words works well), use a different one "
      "for every site, keep them in a password manager, and turn on two-factor authentication.",
      "Use your birthday, because it is easy to remember and nobody will guess it.",
      "Make it longer."]),
    ("Why do cats purr?",
     ["Cats purr when they are content, but also when stressed or hurt; the purr seems to calm "
      "them, and its low frequencies may even help heal bone and tissue.",
      "Cats purr because they are angry and about to attack.",
      "They are happy, mostly."]),
    ("What is photosynthesis?",
     ["Photosynthesis is how plants, algae and some bacteria use light energy to turn carbon "
      "dioxide and water into glucose, releasing oxygen as a by-product.",
      "Photosynthesis is when plants breathe in oxygen at night to make food from soil.",
      "Plants making food from light."]),
    ("Suggest a name for a small bakery.",
     ["\"The Rising Loaf\": warm, easy to remember, and a nod to the dough that rises each morning. "
      "\"Crumb & Co.\" would also suit a neighbourhood shop.",
      "\"Discount Hardware Supplies\".",
      "Bread Place."]),
    ("How far is the Moon from the Earth?",
     ["On average about 384,400 km (238,900 miles); it varies between roughly 363,000 and "
      "405,000 km along its elliptical orbit.",
      "About 1,000 km, which is why it looks so big.",
      "Around 384,000 km."]),
    ("What does HTML stand for?",
     ["HTML stands for HyperText Markup Language, the standard language for structuring web "
      "pages.",
      "Home Tool Making Language.",
      "HyperText Markup Language."]),
    ("Give one tip for learning a new language.",
     ["Practise a little every day, for example fifteen minutes of speaking or listening: regular "
      "short sessions help memory far more than one long session a week.",
      "Don't bother practising; you will pick it up automatically after a few years.",
      "Practise daily."]),
    ("Is a tomato a fruit or a vegetable?",
     ["Botanically a tomato is a fruit, since it grows from the flower and holds the seeds; in "
      "cooking it is treated as a vegetable because it is savoury.",
      "A tomato is a root vegetable, like a carrot.",
      "Both, depending on who you ask."]),
    ("What should I do if I feel dizzy when I stand up?",
     ["Sit or lie down until it passes, then stand up slowly and drink some water. If it happens "
      "often, or you faint, see a doctor, since low blood pressure or medication can cause it.",
      "Stand up faster so your body gets used to it.",
      "Sit down for a moment."]),
]


# 96 more prompts (288 pairs, 360 in all; 2026-12-04): with 72 pairs the smallest of ten
# attributes' τ still moved by about ±0.02 when the pairs were drawn again, as wide as the gaps
# between the 8-bit schemes and the bar.
EXTRA_PAIRS = [
    # Science, mathematics, health, nature.
    ("Why does ice float on water?",
     ["Because ice is colder than water, and cold things always rise to the top.",
      "When water freezes, its molecules lock into a hexagonal crystal held by hydrogen bonds. "
      "That open structure takes up more space, so ice is about 9% less dense than liquid "
      "water and floats.",
      "Ice is less dense than liquid water."]),
    ("What is the speed of light in a vacuum?",
     ["About 299,792 km per second.",
      "Light travels at 299,792,458 metres per second in a vacuum, often rounded to "
      "300,000 km/s. Nothing carrying information can travel faster.",
      "Light has no fixed speed; it depends on how bright the source is, so a torch beam is "
      "slower than sunlight."]),
    ("How many chambers does the human heart have?",
     ["The heart has two chambers, one for blood going in and one for blood going out.",
      "Four.",
      "It has four chambers: two upper atria that receive blood and two lower ventricles that "
      "pump it out. The right side sends blood to the lungs, the left side to the rest of "
      "the body."]),
    ("What is the area of a circle with a radius of 5 cm?",
     ["Area = pi x r^2 = pi x 5^2 = 25pi, which is about 78.54 square centimetres.",
      "Well, circles are round, and the area is sort of the space inside the circle, so you "
      "need to think about the radius, and the radius is 5, so the area depends on the "
      "radius, which is 5 cm, and it is roughly a fair bit of centimetres.",
      "The area is 2 x pi x 5 = 31.4 square centimetres."]),
    ("What's the difference between a virus and a bacterium?",
     ["Bacteria are single-celled living organisms that can reproduce on their own, and many "
      "can be treated with antibiotics. Viruses are much smaller, are not cells, and can only "
      "replicate inside a host cell; antibiotics do not work on them.",
      "There is no real difference; virus is just the medical word for a bacterium that makes "
      "you sick.",
      "Bacteria are cells; viruses are not."]),
    ("How do I remove rust from a steel tool at home?",
     ["Just paint over it. The rust will disappear under the paint and stop forever.",
      "Soak the tool in white vinegar for several hours or overnight, then scrub with steel "
      "wool or a wire brush. Rinse, dry it thoroughly, and wipe on a thin coat of oil to "
      "stop new rust forming.",
      "Vinegar soak, then scrub."]),
    ("Why do onions make you cry?",
     ["Cutting an onion breaks its cells and releases enzymes that produce a volatile "
      "sulfur compound called syn-propanethial-S-oxide. It drifts up, irritates your eyes, "
      "and triggers tear production. Chilling the onion or using a sharp knife helps.",
      "Onions contain tiny amounts of salt that jump into your eyes when you cut them.",
      "A sulfur gas released when cut irritates your eyes."]),
    ("List the planets of the solar system in order from the Sun.",
     ["Mercury, Venus, Earth, Mars, Jupiter, Saturn, Uranus, Neptune.",
      "Mercury, Venus, Earth, Mars, Saturn, Jupiter, Neptune, Uranus, Pluto.",
      "So the planets, there are quite a few of them, and they go around the Sun, starting "
      "with the ones close by and then the big ones further out, and Earth is in there "
      "somewhere, third I think, and the gas giants are out past that."]),
    ("What is the boiling point of water at sea level in Fahrenheit?",
     ["Water boils at 100 degrees Fahrenheit at sea level.",
      "212 degrees F.",
      "At standard sea-level pressure, water boils at 212 degrees Fahrenheit, which is "
      "100 degrees Celsius. At higher altitudes the air pressure is lower, so it boils "
      "at a lower temperature."]),
    ("Why is salt spread on icy roads?",
     ["Salt dissolves into the thin layer of water on ice and lowers its freezing point. "
      "The salty water stays liquid below 0 degrees C, so the ice melts and is less likely "
      "to refreeze. It works less well in very cold weather.",
      "Salt lowers the freezing point of water.",
      "Salt is rough, so it is mainly there to give tyres grip; it does not affect the ice "
      "itself."]),
    ("What is the largest animal on Earth?",
     ["The African elephant is the largest animal that has ever lived.",
      "The blue whale. It can reach around 30 metres long and weigh well over 150 tonnes, "
      "making it the largest animal known to have ever lived.",
      "The blue whale."]),
    ("How do bats find their way in the dark?",
     ["Many bats use echolocation: they emit high-pitched calls and listen to the echoes "
      "bouncing off objects. From the timing and direction of the echoes they can judge "
      "distance, size and movement, which lets them catch insects in total darkness.",
      "Bats have excellent night vision like owls, which is why they never use sound at all.",
      "Echolocation."]),
    ("Is 51 a prime number?",
     ["Yes, 51 is prime because it is odd and does not end in 5.",
      "No. 51 = 3 x 17, so it has divisors other than 1 and itself. A quick check: its "
      "digits add up to 6, which is divisible by 3, so 51 is too.",
      "No, it's 3 x 17."]),
    ("Convert 25 degrees Celsius to Fahrenheit.",
     ["77 degrees F.",
      "Use F = C x 9/5 + 32. So 25 x 9/5 = 45, and 45 + 32 = 77. That means 25 degrees C "
      "is 77 degrees F, a pleasant warm day.",
      "Multiply by 2 and you get 50 degrees Fahrenheit."]),
    ("How long does sunlight take to reach Earth?",
     ["Sunlight arrives instantly, because light does not need time to travel.",
      "About 8 minutes and 20 seconds on average. The Sun is roughly 150 million km away, "
      "and light covers about 300,000 km each second, so the light you see left the Sun "
      "a little over eight minutes ago.",
      "Roughly 8 minutes."]),
    ("Why do we get goosebumps?",
     ["It's kind of a body thing, when you are cold or something happens, the skin does "
      "its bumpy thing, and that is the goosebumps, which happen to lots of people, and "
      "they come and go, and nobody really knows, it is just how skin is.",
      "Tiny muscles called arrector pili at the base of each hair contract when you are cold "
      "or feel strong emotion, pulling the hairs upright. In furrier ancestors this trapped "
      "warm air or made them look bigger; in humans it is mostly a leftover reflex.",
      "Goosebumps are a sign your skin is allergic to cold air."]),
    ("What's the difference between mitosis and meiosis?",
     ["Mitosis makes two identical cells with the full chromosome count, used for growth and "
      "repair. Meiosis involves two divisions and makes four genetically different cells "
      "with half the chromosomes, used to produce eggs and sperm.",
      "Mitosis: 2 identical cells. Meiosis: 4 varied sex cells.",
      "Mitosis happens in plants and meiosis happens in animals."]),
    ("What is the chemical formula of table salt?",
     ["NaCl.",
      "Table salt is H2O with some minerals added.",
      "Table salt is sodium chloride, with the formula NaCl. It is an ionic compound made of "
      "sodium ions (Na+) and chloride ions (Cl-) arranged in a cubic crystal lattice. Most "
      "table salt is mined from underground deposits or obtained by evaporating seawater, "
      "and many brands add a little iodine to help prevent iodine deficiency. It is also "
      "used for preserving food, de-icing roads, and in many industrial processes such as "
      "making chlorine and sodium hydroxide."]),
    ("How can I tell a frog from a toad?",
     ["Toads are just baby frogs; they turn into frogs when they grow up.",
      "As a rule of thumb, frogs have smooth, moist skin and long legs for jumping, and "
      "usually live near water. Toads have dry, bumpy skin, shorter legs for hopping or "
      "walking, and often live further from water.",
      "Frogs: smooth skin, long legs. Toads: bumpy skin, short legs."]),
    ("Why does a metal spoon feel colder than a wooden spoon at the same temperature?",
     ["Metal is a good thermal conductor, so it draws heat away from your fingers quickly, "
      "and your skin senses that heat loss as cold. Wood is a poor conductor, so it takes "
      "heat slowly and feels warmer, even though both are at room temperature.",
      "Metal is actually colder, because metals always stay a few degrees below the air.",
      "Metal conducts heat away from your hand faster."]),
    ("A right triangle has legs of 3 and 4. How long is the hypotenuse?",
     ["5.",
      "It is 7, because you add the two legs together.",
      "Using the Pythagorean theorem, c^2 = 3^2 + 4^2 = 9 + 16 = 25, so c = 5. This 3-4-5 "
      "triangle is the classic example of a Pythagorean triple."]),
    ("What does vitamin D do for the body?",
     ["Vitamin D helps your gut absorb calcium and phosphate, which keeps bones and teeth "
      "strong, and it also supports muscle and immune function. Your skin makes it in "
      "sunlight, and it is found in oily fish, egg yolks and fortified foods.",
      "Helps absorb calcium for healthy bones.",
      "Vitamin D mainly improves eyesight, which is why carrots are full of it."]),
    ("Why do leaves change colour in autumn?",
     ["Leaves change colour because the cold air paints them with frost.",
      "As days shorten, trees stop making chlorophyll, the green pigment. As it breaks down, "
      "yellow and orange carotenoids already in the leaf become visible, and some trees "
      "also produce red anthocyanins.",
      "Well, it is autumn, so the leaves change, which is what they do every year when "
      "autumn comes, and the colours are different from summer, lots of reds and yellows, "
      "because the season has changed and so the leaves change as well, more or less."]),
    ("If a car travels 150 km in 2.5 hours, what is its average speed?",
     ["Average speed is distance divided by time: 150 km / 2.5 h = 60 km/h.",
      "375 km/h.",
      "60 km/h."]),
    ("Name three noble gases.",
     ["Oxygen, nitrogen and hydrogen.",
      "Helium, neon and argon.",
      "Three noble gases are helium, neon and argon. Others in the group include krypton, "
      "xenon and radon. They sit in group 18 of the periodic table and are very unreactive "
      "because their outer electron shells are full."]),
    ("What causes hiccups?",
     ["Hiccups are caused by your heart skipping a beat.",
      "An involuntary diaphragm spasm.",
      "Hiccups happen when your diaphragm suddenly contracts involuntarily and your vocal "
      "cords snap shut a moment later, making the 'hic' sound. Triggers include eating too "
      "fast, fizzy drinks, and sudden excitement; they usually stop on their own."]),
    ("How do I calculate my BMI?",
     ["Divide your weight in kilograms by your height in metres squared. For example, 70 kg "
      "and 1.75 m gives 70 / (1.75 x 1.75), which is about 22.9. For adults, 18.5 to 24.9 "
      "is usually classed as a healthy range.",
      "Multiply your height in centimetres by your weight and divide by 100.",
      "Weight (kg) divided by height (m) squared."]),
    ("Why does mixing baking soda and vinegar make it fizz?",
     ["Baking soda is a base and vinegar contains acetic acid. When they mix, they react to "
      "form carbonic acid, which quickly breaks down into water and carbon dioxide gas. "
      "The CO2 bubbles are the fizz you see.",
      "The fizz is oxygen being released from the vinegar.",
      "An acid-base reaction that releases carbon dioxide."]),
    ("Are whales fish?",
     ["No, they are mammals.",
      "Yes, whales are the largest fish in the sea, which is why they have fins and gills.",
      "No. Whales are mammals: they breathe air through lungs, are warm-blooded, give birth "
      "to live young and feed them milk. Their tails also move up and down, unlike the "
      "side-to-side motion of most fish."]),
    ("What's the probability of rolling a total of 7 with two six-sided dice?",
     ["1/6.",
      "There are 36 equally likely outcomes, and six of them sum to 7: 1+6, 2+5, 3+4, 4+3, "
      "5+2 and 6+1. So the probability is 6/36 = 1/6, about 16.7%, making 7 the most "
      "likely total.",
      "It is 1/12, since there are 12 possible totals and 7 is one of them."]),
    ("How do vaccines work?",
     ["Vaccines work by giving you the full disease in a mild form so your body gets used to "
      "being sick.",
      "They train your immune system to recognise a germ.",
      "A vaccine exposes your immune system to a harmless piece or weakened form of a "
      "germ, or instructions to make one of its proteins. Your body produces antibodies "
      "and memory cells, so if you meet the real germ later, it can respond quickly."]),
    ("Why is the ocean salty?",
     ["Rain slowly dissolves minerals from rocks, and rivers carry these salts into the sea. "
      "When seawater evaporates, the water leaves but the salt stays, so it builds up over "
      "millions of years. Hydrothermal vents and undersea volcanoes add more.",
      "Minerals washed in from rivers accumulate as water evaporates.",
      "The ocean is salty because fish release salt through their gills."]),
    # Programming, technology, writing, grammar.
    ("How do I check if a key exists in a Python dictionary?",
     ["Use `my_dict.has_key('name')`; it is the standard way to do this in Python 3.",
      "Use the `in` operator: `if 'name' in my_dict:` is True when the key is present. If you "
      "also want the value, `my_dict.get('name')` returns None (or a default you pass) instead "
      "of raising a KeyError.",
      "`'name' in my_dict`"]),
    ("How can I count the number of lines in a file from the command line?",
     ["wc -l file.txt",
      "Run `wc -l file.txt`. It counts the newline characters, which is the number of lines, "
      "and prints the filename after it. Use `wc -l < file.txt` if you want only the number.",
      "Use `ls -l file.txt`; the number in the second column is the line count."]),
    ("How do I create a new git branch and switch to it?",
     ["Branches are really useful in git, and there are lots of ways to work with branches. "
      "You can make branches and switch branches, and switching is something you do a lot. "
      "It depends on your workflow, but generally branches are a good idea and you should "
      "use a branch when you need a branch.",
      "Use `git branch -d feature-login`, which creates the branch and moves you onto it.",
      "Run `git switch -c feature-login` (or the older `git checkout -b feature-login`). "
      "This creates the branch from your current commit and switches to it in one step."]),
    ("What is the difference between WHERE and HAVING in SQL?",
     ["`WHERE` filters individual rows before grouping happens, while `HAVING` filters groups "
      "after `GROUP BY` and aggregation. So `WHERE price > 10` drops rows, but "
      "`HAVING COUNT(*) > 5` keeps only groups with more than five rows.",
      "WHERE filters rows; HAVING filters groups.",
      "They are identical; HAVING is just an older spelling of WHERE that is kept for "
      "backward compatibility."]),
    ("In JavaScript, what's the difference between == and ===?",
     ["`===` is used for assigning values, while `==` is used for comparing them.",
      "`==` is the loose equality operator: before comparing, it converts the operands to a "
      "common type, so `0 == '0'` and `null == undefined` are both true. `===` is strict "
      "equality: it returns true only if both the type and the value match, so `0 === '0'` "
      "is false. Because coercion rules can be surprising, most style guides recommend "
      "`===` and `!==` by default, using `==` only when you deliberately want coercion, "
      "such as `x == null` to catch both null and undefined.",
      "`===` compares without type conversion; `==` converts types first."]),
    ("What's the difference between RAM and storage?",
     ["RAM is temporary working memory; storage keeps data permanently.",
      "RAM is fast, temporary memory that holds the programs and data your computer is "
      "actively using, and it is cleared when the power goes off. Storage, such as an SSD or "
      "hard drive, is slower but keeps your files and installed programs when the computer "
      "is shut down.",
      "They are the same thing; RAM is just the marketing name for the hard drive, so a "
      "laptop with 16 GB of RAM can store 16 GB of files."]),
    ("Can you make this sentence more concise: \"Due to the fact that the manager was sick, "
     "the meeting was postponed to a later date.\"",
     ["\"Due to the fact that the manager was ill and unwell, the meeting has been postponed "
      "and delayed until a later future date.\"",
      "Meeting postponed; manager sick.",
      "Try: \"The meeting was postponed because the manager was sick.\" Replacing \"due to "
      "the fact that\" with \"because\" and dropping \"to a later date\", which \"postponed\" "
      "already implies, cuts the sentence nearly in half."]),
    ("Write a short email to my teacher asking for a deadline extension on a project.",
     ["Subject: Request for an extension on the project report\n\nHi Ms. Patel,\n\n"
      "I'm writing to ask whether I could have until Friday to submit the project report. "
      "I was ill earlier this week and want to hand in work that meets your standards. "
      "Thank you for considering my request.\n\nBest regards,\nSam",
      "You should write an email that asks for more time. Emails are important, so make it a "
      "good email. Ask for the extension and say you need more time, because time is what an "
      "extension gives you. Be polite, and also be polite, and then send it when it's ready.",
      "Just write \"need more time, will send it whenever\" and skip the greeting; teachers "
      "prefer blunt emails."]),
    ("Give me a slogan for a bicycle repair shop.",
     ["\"Back on the road, fast.\"",
      "How about \"We fix it, you ride it\"? It's short, upbeat and tells customers exactly "
      "what you do. Another option: \"Spin Cycle Repairs: keeping your wheels turning.\"",
      "\"Bikes are dangerous, but we sometimes fix them.\""]),
    ("Write a limerick about a programmer.",
     ["Limericks are fun poems with five lines, and they are funny, and programmers are people "
      "who program. A limerick about a programmer would be funny and have five lines about "
      "programming, which is what programmers do, so it would be a programming limerick.",
      "A programmer known as Lou Wright\nWould debug his code every night.\nHe'd fix one "
      "small bug,\nGive his coffee a chug,\nThen find ten more bugs by daylight.",
      "Here is a limerick:\nCode is fun.\nI like to run.\nThe end."]),
    ("When should I use \"affect\" versus \"effect\"?",
     ["\"Affect\" is usually a verb meaning to influence: \"The rain affected the game.\" "
      "\"Effect\" is usually a noun meaning a result: \"The rain had a big effect on the "
      "game.\" A handy trick: Affect is the Action, Effect is the End result.",
      "They mean exactly the same thing and you can swap them freely; \"effect\" is just the "
      "British spelling.",
      "Affect is the verb; effect is the noun."]),
    ("What does the word \"ubiquitous\" mean?",
     ["Found everywhere.",
      "It means extremely rare or unique, like a one-of-a-kind object.",
      "\"Ubiquitous\" means present, appearing or found everywhere. For example: "
      "\"Smartphones have become ubiquitous, so it's hard to find a café where nobody is "
      "using one.\""]),
    ("What is spaced repetition and how does it help with studying?",
     ["Spaced repetition is a study method where you review material at gradually increasing "
      "intervals instead of cramming it all at once. For example, you might review a new "
      "vocabulary word after one day, then after three days, then a week, then a month. Each "
      "review comes just as you are starting to forget, which strengthens long-term memory. "
      "Flashcard apps such as Anki schedule this automatically, showing hard cards more often "
      "and easy ones less often, so your time goes where it's needed most.",
      "Reviewing material at increasing intervals.",
      "It means reading the same chapter ten times in a row the night before the exam, which "
      "is the most effective way to remember it."]),
    ("Can you explain the Pomodoro Technique?",
     ["It's a diet plan for students where you eat tomatoes before studying to boost memory.",
      "The Pomodoro Technique is a time-management method: you work with full focus for 25 "
      "minutes, then take a 5-minute break. After four work sessions, you take a longer break "
      "of 15 to 30 minutes. It makes tasks easier to start and helps limit fatigue.",
      "It's a technique that's about time, and managing your time, with a timer. Basically "
      "you use the time and work and then stop, and then work again, and it's about timing "
      "things so that you work in a timed way. Lots of people use it, and it is popular."]),
    ("What does CPU stand for?",
     ["Central Processing Unit.",
      "Computer Power Unit; it's the part that supplies electricity to the motherboard.",
      "CPU stands for Central Processing Unit. It's the chip that executes program "
      "instructions, doing the arithmetic, logic and control work that runs your operating "
      "system and applications."]),
    ("How do I find a file by name on Linux?",
     ["Use `find`: `find /home/user -name \"report*.pdf\"` searches that directory and all its "
      "subdirectories for matching names. Use `-iname` instead of `-name` for a "
      "case-insensitive search, and quote the pattern so the shell doesn't expand it first.",
      "Run `grep report.pdf /` and it will list every file with that name on the system.",
      "`find . -name 'report.pdf'`"]),
    ("How do I count the rows in a SQL table called customers?",
     ["Use `SELECT LENGTH(*) FROM customers;`, which returns the number of rows.",
      "`SELECT COUNT(*) FROM customers;`",
      "Run `SELECT COUNT(*) FROM customers;`. It returns a single number: the total rows in "
      "the table. To count only rows where a particular column isn't NULL, use "
      "`COUNT(column_name)` instead."]),
    ("What's the difference between a list and a tuple in Python?",
     ["Lists and tuples are both ways to store things in Python. They are kind of similar but "
      "also kind of different. You use them for storing data, and which one you choose "
      "depends on what you're doing and what kind of data you have and how you store it.",
      "Lists are mutable, so you can add, remove or change items, and they use square "
      "brackets: `[1, 2, 3]`. Tuples are immutable and use parentheses: `(1, 2, 3)`. Use "
      "tuples for fixed collections like coordinates; if their items are hashable, they can "
      "even be dictionary keys.",
      "Tuples can only hold numbers, while lists can hold any type, and tuples are always "
      "slower than lists."]),
    ("What does git stash do?",
     ["It shelves uncommitted changes so you can reapply them later.",
      "`git stash` saves your uncommitted changes to tracked files onto a stack and resets "
      "your working directory to match the last commit, so you can switch branches or pull "
      "without committing half-finished work. Later, `git stash pop` reapplies the most "
      "recent stash and removes it from the stack, while `git stash apply` reapplies it but "
      "keeps it. Use `git stash list` to see saved stashes, and `git stash -u` to include "
      "untracked files too.",
      "`git stash` permanently deletes all your uncommitted changes; it's the fastest way to "
      "clean up a messy working directory."]),
    ("How do I make a shell script executable?",
     ["Run `chmod +x script.sh` to add execute permission, then run it with `./script.sh`. "
      "Make sure the first line has a shebang such as `#!/bin/bash` so the system knows "
      "which interpreter to use.",
      "Rename it to `script.exe`; Linux decides whether a file is executable from its "
      "extension.",
      "`chmod +x script.sh`"]),
    ("What's the difference between \"its\" and \"it's\"?",
     ["\"Its\" is used before vowels and \"it's\" before consonants, so you'd write \"it's "
      "dog\" but \"its owner\".",
      "It's = it is; its = possessive.",
      "\"It's\" is a contraction of \"it is\" or \"it has\": \"It's raining.\" \"Its\" is the "
      "possessive form: \"The dog wagged its tail.\" Quick test: if \"it is\" or \"it has\" "
      "fits in its place, write \"it's\"."]),
    ("List three ways to take better notes in lectures.",
     ["1. Write down every single word the lecturer says.\n2. Never look at your notes again "
      "until the exam.\n3. Use as many colours as possible so every line is different.",
      "Note-taking is important, so you should take good notes. Good notes help you study, "
      "and studying is important too. Try to make your notes better by improving them, and "
      "take notes often, because more notes means more note-taking, which is the main thing.",
      "1. Write notes in your own words instead of copying slides word for word.\n2. Use a "
      "structure such as the Cornell method, with a cue column and a summary at the "
      "bottom.\n3. Review and tidy your notes within 24 hours, while the lecture is fresh."]),
    ("What is an IP address?",
     ["A numeric label that identifies a device on a network.",
      "An IP address is a number that identifies a device on a network so data can be routed "
      "to it, much like a postal address. IPv4 addresses look like `192.168.1.10`, while "
      "newer IPv6 addresses are longer and written in hexadecimal, such as `2001:db8::1`.",
      "It's the serial number burned into your computer's screen at the factory, and it "
      "never changes even if you move to a different network."]),
    ("My C program crashes with a segmentation fault. What does that mean?",
     ["A segmentation fault means your program tried to access memory it isn't allowed to, "
      "such as dereferencing a NULL or uninitialised pointer, writing past the end of an "
      "array, or using memory after `free()`. Compile with `-g` and run it under `gdb`, or "
      "build with `-fsanitize=address`, to find the exact line.",
      "A segfault means your hard drive has bad sectors; you need to replace the disk before "
      "the program will run.",
      "A segfault is an error, a fault in a segment, that happens in C programs when something "
      "goes wrong. It means there's a problem, and the program crashes because of the "
      "problem. You'll need to fix whatever the problem is and then it should work."]),
    ("Write a short poem about the ocean.",
     ["The ocean covers about 10% of Earth's surface and is made mostly of fresh water.",
      "The ocean breathes in silver light,\nIt pulls the moon across the night;\nIt keeps "
      "the secrets sailors knew\nBeneath a blanket, deep and blue.",
      "Waves rise and fall;\nthe sea outlasts us all."]),
    ("Should I say \"fewer\" or \"less\"?",
     ["Use \"fewer\" with things you can count individually: \"fewer cookies,\" \"fewer "
      "mistakes.\" Use \"less\" with uncountable amounts: \"less sugar,\" \"less time.\" So "
      "by the traditional rule, a checkout sign would read \"10 items or fewer.\"",
      "Fewer for countable nouns, less for uncountable ones.",
      "\"Less\" is for people and \"fewer\" is for objects, so you say \"less students\" but "
      "\"fewer chairs.\""]),
    ("In Java, what's the difference between int and Integer?",
     ["`Integer` can store larger numbers than `int`, up to 2^64, which is why it's preferred "
      "for big values.",
      "`int` is a primitive type that holds a 32-bit signed value directly and can't be null. "
      "`Integer` is a wrapper class, an object containing an `int`, which can be null and can "
      "be used in generics such as `List<Integer>`, since collections can't hold primitives. "
      "Java converts between them automatically (autoboxing and unboxing), but unboxing a "
      "null `Integer` throws a NullPointerException, and comparing two `Integer` objects "
      "with `==` compares references, so use `.equals()` instead.",
      "`int` is a primitive; `Integer` is its object wrapper."]),
    ("What's the difference between HTTP and HTTPS?",
     ["HTTPS is just a faster version of HTTP; the S stands for \"speed,\" and it has nothing "
      "to do with security.",
      "HTTPS is HTTP sent over an encrypted TLS connection. The encryption stops others on "
      "the network from reading or tampering with the data, and the site's certificate lets "
      "your browser verify it's talking to the real server. Plain HTTP sends data unencrypted.",
      "HTTP and HTTPS are both protocols for websites. One has an S and one doesn't, and the "
      "S makes a difference. It's about how websites work and how data gets sent, and HTTPS "
      "is generally better in some ways, depending on what you mean."]),
    ("Briefly, what is ownership in Rust?",
     ["Each value has one owner, and it's dropped when the owner goes out of scope.",
      "Ownership means only the user who created a file can run a Rust program; it's Rust's "
      "version of file permissions.",
      "In Rust, every value has a single owner, and when that owner goes out of scope the "
      "value is dropped automatically. Assigning or passing a value like a `String` moves "
      "ownership, so the old variable can't be used. Borrowing with references (`&T` or "
      "`&mut T`) lets the compiler guarantee memory safety without a garbage collector."]),
    ("What's the difference between a LEFT JOIN and an INNER JOIN?",
     ["An `INNER JOIN` returns only rows that have a match in both tables. A `LEFT JOIN` "
      "returns every row from the left table plus matching data from the right; where there's "
      "no match, the right table's columns are NULL. Use a LEFT JOIN to keep, say, customers "
      "who have no orders.",
      "A LEFT JOIN returns only the columns from the left table, while an INNER JOIN returns "
      "columns from both tables.",
      "INNER keeps only matches; LEFT keeps all left-table rows."]),
    ("What's the difference between \"e.g.\" and \"i.e.\"?",
     ["They're interchangeable abbreviations for \"for example,\" so use whichever you like.",
      "\"E.g.\" comes from the Latin \"exempli gratia\" and means \"for example\", so it "
      "introduces examples: \"fruits, e.g. apples and pears.\" \"I.e.\" comes from \"id est\" "
      "and means \"that is\", so it introduces a restatement: \"my hometown, i.e. Leeds.\"",
      "e.g. = for example; i.e. = that is."]),
    ("What is 13 in binary?",
     ["It's `1011`, because binary numbers are read from left to right starting with the "
      "ones place.",
      "1101",
      "13 in binary is `1101`. That's 8 + 4 + 0 + 1: one eight, one four, no two and one "
      "one."]),
    # History, geography, the arts, cooking, money, travel, home, work, etiquette.
    ("Who was the first Roman emperor?",
     ["Julius Caesar was the first Roman emperor; he was crowned in 44 BC and ruled for "
      "thirty years.",
      "Augustus (born Gaius Octavius) is considered the first Roman emperor. After defeating "
      "Mark Antony and Cleopatra, he received the title Augustus from the Senate in 27 BC "
      "and ruled until his death in AD 14.",
      "Augustus."]),
    ("What is the longest river in South America?",
     ["The Amazon.",
      "The Orinoco, which flows south through Brazil and Argentina before reaching the "
      "Pacific.",
      "The Amazon is the longest river in South America, at roughly 6,400 km. It rises in "
      "the Peruvian Andes and flows east across Brazil to the Atlantic, and it carries more "
      "water than any other river on Earth."]),
    ("Who wrote \"Pride and Prejudice\", and when was it published?",
     ["Pride and Prejudice is a very famous book that lots of people have read, and it was "
      "written a long time ago by a famous English author, and it is about pride and also "
      "prejudice, which are themes, and it came out in the past, quite a while ago really.",
      "Jane Austen wrote Pride and Prejudice. It was first published in 1813 and follows "
      "Elizabeth Bennet and her changing relationship with the proud Mr Darcy.",
      "Charlotte Bronte wrote it in 1847, shortly after finishing Wuthering Heights."]),
    ("How do I cook rice on the stove without it getting mushy?",
     ["Rinse it, don't use too much water, and don't stir it.",
      "Use about five cups of water per cup of rice and stir it constantly at a rolling boil "
      "for 40 minutes; the stirring is what makes it fluffy.",
      "Rinse the rice until the water runs fairly clear, then use about 1.5 to 2 cups of "
      "water per cup of long-grain white rice. Bring it to a boil, cover, and simmer on low "
      "for 15-18 minutes, then let it rest covered off the heat for 5-10 minutes before "
      "fluffing with a fork."]),
    ("What's the difference between a Roth IRA and a traditional IRA?",
     ["Both are US individual retirement accounts, but they differ in when you pay tax. "
      "Traditional IRA contributions may be tax-deductible in the year you make them, the "
      "investments grow tax-deferred, and withdrawals in retirement are taxed as ordinary "
      "income. Roth IRA contributions are made with after-tax money, so there is no "
      "deduction now, but qualified withdrawals, including growth, are tax-free. Traditional "
      "IRAs also have required minimum distributions starting in your seventies, while Roth "
      "IRAs have none for the original owner.",
      "There's no real difference; Roth is just the name of the bank that offers that "
      "version.",
      "Traditional: tax break now, taxed later. Roth: taxed now, tax-free later."]),
    ("What should I pack in my carry-on for a long-haul flight?",
     ["Pack your passport and travel documents, any medication, a phone charger, headphones, "
      "an empty refillable water bottle to fill after security, a light layer for the cold "
      "cabin, and a change of clothes in case your checked bag is delayed.",
      "Documents, medication, chargers and a sweater.",
      "Put everything valuable, including your passport and medication, in your checked "
      "suitcase so you don't have to carry anything on board."]),
    ("When should I plant tulip bulbs?",
     ["Plant them in midsummer in a soggy, shady spot so they bloom right away in August.",
      "In autumn, before the ground freezes.",
      "Plant tulip bulbs in autumn, about six to eight weeks before the ground freezes, "
      "usually once the soil has cooled below about 15 °C (60 °F). Set them roughly 15-20 cm "
      "deep, pointy end up, in well-drained soil that gets plenty of sun."]),
    ("How do I ask my manager for a raise?",
     ["Schedule a dedicated meeting rather than raising it in passing. Come prepared with "
      "specific accomplishments, any extra responsibilities you've taken on, and market "
      "salary data for your role, then name a clear figure or range. Stay calm and "
      "professional, and if the answer is no, ask what you'd need to achieve to get there.",
      "Asking for a raise is something many people think about, and it can be hard, so you "
      "should think about it and maybe talk to your manager at some point, or maybe not, "
      "depending on how things are going, because every situation is different and raises "
      "are a big topic that involves money.",
      "Tell your manager you have another offer, even if you don't, and threaten to quit on "
      "the spot if they say no."]),
    ("Which fork do I use first at a formal dinner?",
     ["The outermost one; work inward.",
      "Work from the outside in. The outermost fork on the left is for the first course, "
      "such as a salad or starter, and you move inward with each new course. The dessert "
      "fork is usually placed horizontally above the plate.",
      "Always start with the fork closest to the plate and work outward; the outer forks are "
      "only there for decoration."]),
    ("What was the Magna Carta?",
     ["The Magna Carta was the peace treaty that ended the Hundred Years' War, signed by "
      "Napoleon and Queen Victoria.",
      "A 1215 English charter that limited the king's power.",
      "The Magna Carta was a charter agreed to by King John of England in 1215 under "
      "pressure from rebellious barons. It limited royal power and established the principle "
      "that the monarch was subject to the law, and it later became a lasting symbol of "
      "rights such as due process."]),
    ("Which countries does the Danube flow through?",
     ["The Danube flows through ten countries: Germany, Austria, Slovakia, Hungary, Croatia, "
      "Serbia, Romania, Bulgaria, Moldova and Ukraine. It passes four capitals, Vienna, "
      "Bratislava, Budapest and Belgrade, before emptying into the Black Sea.",
      "Ten countries, from Germany down to Romania and Ukraine on the Black Sea.",
      "Only Austria and Switzerland; it flows north and empties into the North Sea at "
      "Hamburg."]),
    ("Who painted the ceiling of the Sistine Chapel?",
     ["Leonardo da Vinci painted it in 1750 while he was also finishing the Mona Lisa.",
      "Michelangelo painted the Sistine Chapel ceiling between 1508 and 1512, commissioned "
      "by Pope Julius II. Its best-known scene is The Creation of Adam, and he later "
      "returned to paint The Last Judgment on the altar wall.",
      "Michelangelo."]),
    ("What can I substitute for buttermilk in a recipe?",
     ["Buttermilk is a kind of milk, so you could use something that is like milk, or maybe "
      "something else, depending on the recipe, because recipes are all different and some "
      "need buttermilk and some don't, so it really depends on what you are making and what "
      "you have around.",
      "Use the same amount of plain water with a pinch of baking soda; it tastes identical.",
      "Stir 1 tablespoon of lemon juice or white vinegar into 1 cup of regular milk and let "
      "it stand for 5-10 minutes until slightly thickened, then use it in place of "
      "buttermilk. Plain yogurt thinned with a little milk also works well."]),
    ("How big should my emergency fund be?",
     ["Three to six months of expenses.",
      "A common guideline is three to six months of essential living expenses, such as rent, "
      "food, utilities and debt payments. Aim for the higher end if your income is irregular "
      "or you have dependants, and keep the money in an easy-to-access savings account.",
      "You don't need one; put everything in the stock market and just use a credit card if "
      "something comes up."]),
    ("What's the best way to deal with jet lag after flying east?",
     ["Sleep all day when you arrive and stay up all night; your body will sort itself out "
      "within a day.",
      "Start shifting your sleep schedule a little earlier a few days before you leave. On "
      "arrival, get outdoor morning light, which helps move your body clock earlier, stay up "
      "until a normal local bedtime, keep naps short, drink plenty of water, and go easy on "
      "caffeine and alcohol.",
      "Get morning sunlight and switch to local time right away."]),
    ("How do I unclog a slow bathroom sink drain without harsh chemicals?",
     ["Clean the stopper and use a drain snake.",
      "Just run the hot tap at full blast for an hour; the water pressure will eventually "
      "push any clog through.",
      "First remove and clean the pop-up stopper, since hair often collects there. Then try "
      "a plunger or a cheap plastic drain snake. You can also pour in half a cup of baking "
      "soda followed by a cup of vinegar, wait about 15 minutes, and flush with hot water."]),
    ("How can I stop procrastinating on a big project?",
     ["Wait until the night before the deadline; pressure is the only thing that produces "
      "good work.",
      "Procrastination is when you put things off, and lots of people do it, so you are not "
      "alone, and the thing is to stop doing it and start doing the project, because "
      "projects need to be done, and putting them off means they are not done, which is "
      "really the problem.",
      "Break the project into small, concrete tasks and pick one you can finish in under 30 "
      "minutes. Set a timer for a short focused block, such as 25 minutes, and silence phone "
      "notifications. Getting started is usually the hardest part, and momentum tends to "
      "build once you begin."]),
    ("How much should I tip at a restaurant in the United States?",
     ["About 15-20%.",
      "Tipping isn't customary in the US; servers earn a full wage, so leaving nothing is "
      "perfectly normal.",
      "For sit-down service in the US, 15-20% of the pre-tax bill is standard, and around "
      "20% is now common for good service. You might leave more for exceptional service, "
      "while tipping at counter-service places is optional and usually smaller."]),
    ("Why did the Titanic sink?",
     ["The RMS Titanic struck an iceberg in the North Atlantic late on 14 April 1912, during "
      "her maiden voyage. The collision opened several forward watertight compartments, more "
      "than the ship could stay afloat with, and she sank early on 15 April. There were too "
      "few lifeboats, and more than 1,500 people died.",
      "It hit an iceberg in 1912.",
      "It was torpedoed by a German submarine in 1915 off the coast of Ireland."]),
    ("What is the highest mountain in Africa?",
     ["Mount Kenya, at around 8,000 metres, which makes it even taller than Everest.",
      "Mount Kilimanjaro.",
      "Mount Kilimanjaro in Tanzania is Africa's highest mountain, at about 5,895 metres "
      "(19,341 ft). It is a dormant volcano, and its summit, Uhuru Peak, can be reached by "
      "trekkers without technical climbing gear."]),
    ("Can you recommend a few classic novels for someone who's never read the classics?",
     ["Good starting points are Pride and Prejudice by Jane Austen for wit and romance, The "
      "Great Gatsby by F. Scott Fitzgerald, which is short and vivid, Frankenstein by Mary "
      "Shelley for gothic ideas, and To Kill a Mockingbird by Harper Lee. All are readable "
      "and widely loved.",
      "There are many classic novels, and classics are books that are old and famous, so any "
      "of them would be good really, it depends what you like, and you could ask someone or "
      "look in a library, because libraries have a lot of classics, and classics are worth "
      "reading because they are classics.",
      "Try Moby-Dick by Charles Dickens and War and Peace by Jane Austen; both are short, "
      "light reads you can finish in an afternoon."]),
    ("What's the difference between watercolour and gouache?",
     ["Watercolour is transparent; gouache is opaque.",
      "Both are water-based paints bound with gum arabic, but watercolour is transparent, so "
      "light passes through the layers and reflects off the paper, while gouache has more "
      "pigment and often a white filler, making it opaque and matte. Gouache lets you paint "
      "light colours over dark ones; watercolour generally doesn't.",
      "Gouache is just oil paint that you thin with water, and it takes several weeks to dry."]),
    ("Give me a simple weeknight dinner plan for four using chicken thighs.",
     ["Boil the chicken thighs in plain water for two hours and serve them on their own; "
      "seasoning only hides the flavour.",
      "Try a sheet-pan dinner: toss 8 bone-in chicken thighs with chopped potatoes, carrots "
      "and onion, olive oil, garlic, salt, pepper and paprika. Roast at 220 °C (425 °F) for "
      "about 35-40 minutes, until the chicken reaches 74 °C (165 °F) inside, and serve with "
      "a green salad.",
      "Roast the thighs and some vegetables together on one tray."]),
    ("Should I pay off debt or save for retirement first?",
     ["Usually, first contribute enough to get any employer retirement match, since that's "
      "free money. Then prioritise paying off high-interest debt such as credit cards. Once "
      "that's cleared, increase your retirement savings; low-interest debt like a mortgage "
      "can typically be paid on schedule while you invest.",
      "Ignore your debt until you retire; credit card interest stops growing after a few "
      "years anyway.",
      "Get the employer match, then clear high-interest debt."]),
    ("Compare travelling around Europe by train versus by plane.",
     ["Trains and planes are both ways to travel, and Europe is a place you can travel "
      "around, so you could take a train or a plane or maybe both, and each one has things "
      "that are good and things that are not as good, so it depends on what you prefer and "
      "where you go and when you go.",
      "Trains run city centre to city centre, have little or no security queuing, allow more "
      "luggage and produce far lower emissions, so they often win for journeys under about "
      "four to five hours. Planes are faster and can be cheaper over long distances, such as "
      "Lisbon to Warsaw, but airport transfers and waiting add time.",
      "Trains in Europe are always slower and pricier than flights, and most European "
      "countries don't have passenger rail at all."]),
    ("List some easy houseplants for beginners.",
     ["Start with orchids, Venus flytraps and bonsai trees; they are the hardiest plants and "
      "like to be watered three times a day.",
      "Easy choices include the snake plant, pothos, ZZ plant, spider plant and peace lily. "
      "They tolerate lower light and the occasional missed watering. Most only need water "
      "when the top few centimetres of soil are dry, and overwatering is the most common "
      "beginner mistake.",
      "Snake plant, pothos, ZZ plant."]),
    ("How should I prepare for a job interview?",
     ["Research the company and practise common questions.",
      "Don't prepare at all; interviewers prefer candidates who improvise and haven't looked "
      "into the company.",
      "Start by researching the company, including its products, recent news and values, and "
      "reread the job description so you can match your experience to it. Prepare short "
      "examples of your achievements using the STAR method: situation, task, action and "
      "result. Practise answers to common questions out loud and prepare two or three "
      "thoughtful questions of your own. The day before, plan your outfit and route or test "
      "your video setup, and aim to arrive ten minutes early. Afterwards, send a brief "
      "thank-you note."]),
    ("Is it rude to bring an uninvited plus-one to a wedding?",
     ["No, it's expected; bring as many friends as you like, since more guests always make a "
      "better party.",
      "Yes, generally. Wedding invitations are addressed to specific guests, and couples "
      "plan budgets and seating around exact numbers. If the invitation doesn't say \"and "
      "guest,\" go alone; if you really need to bring someone, ask the couple privately well "
      "before the RSVP deadline and accept their answer gracefully.",
      "Yes, unless the invitation includes a guest."]),
    ("What was the Silk Road?",
     ["The Silk Road was a road, kind of, that had silk on it, or people carrying silk, and "
      "it was long and old and went to lots of places, and it was important for trade, and "
      "trade is important, and silk is a kind of fabric that is soft and nice.",
      "The Silk Road was a network of overland and sea trade routes linking China with "
      "Central Asia, the Middle East and Europe, active from around the 2nd century BC. "
      "Besides silk, traders carried spices, paper and precious metals, and the routes also "
      "spread religions, technologies and ideas.",
      "It was a paved highway the Romans built in the 1700s to carry cotton from India to "
      "Britain."]),
    ("What is the smallest country in the world?",
     ["Vatican City.",
      "Vatican City is the world's smallest country, with an area of about 0.44 square "
      "kilometres (roughly 110 acres). It is an independent city-state surrounded by Rome "
      "and is the seat of the Pope and the Roman Catholic Church.",
      "Monaco, which is smaller than a single football pitch."]),
    ("What's the difference between baking soda and baking powder?",
     ["They're the same thing sold under two names, so you can always swap them one for one.",
      "Baking powder contains its own acid; baking soda needs one from the recipe.",
      "Baking soda is pure sodium bicarbonate and needs an acidic ingredient, such as "
      "buttermilk, yogurt or lemon juice, to produce the carbon dioxide that makes batter "
      "rise. Baking powder already contains baking soda plus a dry acid, so it only needs "
      "moisture and heat to work."]),
    ("How do I make a simple monthly budget?",
     ["Just check your bank balance now and then; as long as it isn't zero, you can keep "
      "spending.",
      "List your monthly take-home income, then track a month of spending and group it into "
      "categories such as housing, food, transport, debt and savings. A simple framework is "
      "the 50/30/20 rule: about 50% for needs, 30% for wants and 20% for savings or debt "
      "repayment. Review it monthly and adjust.",
      "A budget is about money, and you want to know where your money goes, so you should "
      "think about your money and your spending, and maybe write things down or not, because "
      "budgets are personal and everyone does them differently, and money is important to "
      "manage."]),
]
