//! The retrieval-eval corpus: short Markdown documents on distinct topics, and questions
//! each mapped to the document that answers it. Shared by the eval test and `benches/kb`.

/// (file name, Markdown text).
pub(crate) const DOCS: &[(&str, &str)] = &[
    (
        "sourdough.md",
        "# Sourdough bread\n\n## Starter\nA sourdough starter is a culture of wild yeast and lactic acid bacteria kept alive by regular feeding with flour and water. A healthy starter doubles in size within six hours of a feeding and smells pleasantly sour.\n\n## Baking\nThe dough is mixed, left to ferment in bulk for several hours, shaped, then proofed overnight in the fridge. It is baked in a preheated Dutch oven at 250 degrees Celsius, with the lid on for the first twenty minutes to trap steam and give a crisp crust.",
    ),
    (
        "beekeeping.md",
        "# Beekeeping\n\n## The colony\nA honey bee colony has one queen that lays all the eggs, thousands of female worker bees and, in summer, a few hundred male drones. Workers build wax comb, collect nectar and pollen, and guard the entrance.\n\n## Harvest\nBeekeepers remove frames of capped honey in late summer, slice off the wax cappings and spin the frames in an extractor. Enough honey must be left in the hive for the bees to survive the winter.",
    ),
    (
        "volcanoes.md",
        "# Volcanoes\n\n## Eruptions\nA volcano erupts when molten rock called magma rises through the crust and escapes as lava, ash and gas. Explosive eruptions happen when sticky, gas-rich magma traps pressure until it shatters.\n\n## Types\nShield volcanoes such as Mauna Loa in Hawaii have gentle slopes built from runny basalt lava flows. Stratovolcanoes such as Mount Fuji are steep cones of alternating ash and lava layers.",
    ),
    (
        "chess.md",
        "# Chess openings\n\n## Principles\nIn the opening, players fight for the centre, develop knights and bishops quickly, and castle early to keep the king safe. Moving the same piece twice without reason wastes tempo.\n\n## Named openings\nThe Sicilian Defence begins 1.e4 c5 and leads to sharp, unbalanced positions. The Queen's Gambit begins 1.d4 d5 2.c4, offering a pawn to gain control of the centre.",
    ),
    (
        "tides.md",
        "# Ocean tides\n\nTides are the regular rise and fall of sea level caused mainly by the gravitational pull of the Moon, and to a lesser extent the Sun. Most coasts see two high tides and two low tides each lunar day of about 24 hours and 50 minutes.\n\n## Spring and neap tides\nWhen the Sun and Moon line up at new and full moon, their pulls add up and produce spring tides with the largest range. At quarter moons they pull at right angles, giving weaker neap tides.",
    ),
    (
        "photosynthesis.md",
        "# Photosynthesis\n\nPlants, algae and some bacteria turn light energy into chemical energy. In the chloroplasts, the green pigment chlorophyll absorbs mostly red and blue light.\n\n## The reactions\nThe light-dependent reactions split water, releasing oxygen and producing ATP and NADPH. The Calvin cycle then uses that energy to fix carbon dioxide from the air into sugars such as glucose.",
    ),
    (
        "git.md",
        "# Git rebase\n\n## What it does\n`git rebase main` replays the commits of the current branch on top of the latest main, producing a linear history without merge commits.\n\n## Interactive rebase\n`git rebase -i HEAD~5` opens an editor listing the last five commits, where they can be reordered, squashed together, reworded or dropped. Never rebase commits that others have already pulled, because it rewrites their hashes.",
    ),
    (
        "marathon.md",
        "# Marathon training\n\n## Building up\nA typical plan lasts sixteen to twenty weeks and increases weekly mileage by no more than about ten percent. The weekly long run grows gradually to around 32 kilometres.\n\n## Race week\nIn the final two to three weeks runners taper, reducing volume so the legs recover. Carbohydrate loading in the last days fills the muscles with glycogen, which delays hitting the wall.",
    ),
    (
        "coffee.md",
        "# Coffee roasting\n\nGreen coffee beans are roasted to develop flavour. Around 196 degrees Celsius the beans crack audibly, the first crack, as steam escapes; light roasts stop soon after it.\n\n## Roast levels\nLight roasts keep more acidity and fruity origin flavours, while dark roasts, taken past the second crack, taste bitter and smoky with oils on the surface. Freshly roasted coffee should rest a few days to release carbon dioxide before brewing.",
    ),
    (
        "black_holes.md",
        "# Black holes\n\nA black hole is a region where gravity is so strong that nothing, not even light, can escape. Its boundary is the event horizon.\n\n## Formation and radiation\nStellar black holes form when a massive star collapses at the end of its life, often after a supernova. Stephen Hawking predicted that black holes slowly lose mass by emitting Hawking radiation because of quantum effects near the horizon.",
    ),
    (
        "composting.md",
        "# Composting\n\nCompost is decomposed organic matter used to enrich garden soil. A good heap mixes green materials rich in nitrogen, such as grass clippings and vegetable scraps, with brown materials rich in carbon, such as dry leaves and cardboard.\n\n## Keeping it healthy\nTurning the pile every week or two adds oxygen for the microbes. It should be as damp as a wrung-out sponge; a smelly heap is usually too wet and needs more browns.",
    ),
    (
        "tcp.md",
        "# The TCP handshake\n\nTCP opens a connection with a three-way handshake: the client sends SYN, the server answers SYN-ACK, and the client replies ACK. Both sides choose initial sequence numbers during this exchange.\n\n## Closing\nA connection is closed with FIN segments from each side. The side that closes first waits in the TIME_WAIT state for twice the maximum segment lifetime so that delayed packets die out.",
    ),
    (
        "watercolor.md",
        "# Watercolor painting\n\n## Techniques\nIn the wet-on-wet technique, paint is applied to paper already soaked with water, so colours bleed into soft edges. Wet-on-dry gives crisp, controlled edges.\n\n## Materials\nCold-pressed cotton paper of 300 grams per square metre resists buckling. Because watercolor is transparent, painters keep the white of the paper for highlights instead of using white paint.",
    ),
    (
        "vaccines.md",
        "# Vaccines\n\nA vaccine trains the immune system to recognise a pathogen without causing the disease. It presents an antigen, such as an inactivated virus, a protein subunit or mRNA instructions, so that B cells make antibodies and memory cells form.\n\n## Herd immunity\nWhen a large enough share of a population is immune, chains of infection break, protecting people who cannot be vaccinated. The threshold depends on how contagious the disease is, over 90 percent for measles.",
    ),
    (
        "bicycle.md",
        "# Bicycle maintenance\n\n## Chain care\nA bicycle chain should be cleaned and lubricated every few hundred kilometres, and more often in rain. A chain checker tool shows wear; a stretched chain quickly wears out the cassette and chainrings.\n\n## Tyres and brakes\nCheck tyre pressure weekly against the range printed on the sidewall. Replace brake pads when the grooves are worn away, and fix a flat by removing the tube, finding the puncture and applying a patch.",
    ),
    (
        "rust.md",
        "# Ownership in Rust\n\nEvery value in Rust has a single owner, and the value is dropped when its owner goes out of scope. Assigning a value to another variable moves it, unless the type implements Copy.\n\n## Borrowing\nReferences borrow a value without taking ownership. The borrow checker allows either many shared references or exactly one mutable reference at a time, which prevents data races at compile time.",
    ),
];

/// (question, file name of the document that answers it).
pub(crate) const QUESTIONS: &[(&str, &str)] = &[
    ("How do I keep my wild yeast culture alive?", "sourdough.md"),
    (
        "At what temperature should I bake a loaf in a Dutch oven?",
        "sourdough.md",
    ),
    (
        "Why bake with the lid on for the first twenty minutes?",
        "sourdough.md",
    ),
    ("Which bee lays the eggs in a hive?", "beekeeping.md"),
    ("How is honey extracted from the frames?", "beekeeping.md"),
    ("What are male bees called?", "beekeeping.md"),
    ("Why do some eruptions explode violently?", "volcanoes.md"),
    ("What kind of volcano is Mauna Loa?", "volcanoes.md"),
    ("How is Mount Fuji built up?", "volcanoes.md"),
    (
        "What should I do in the first moves of a chess game?",
        "chess.md",
    ),
    ("Which opening starts with e4 c5?", "chess.md"),
    ("What does the Queen's Gambit offer?", "chess.md"),
    (
        "What causes the sea level to rise and fall twice a day?",
        "tides.md",
    ),
    ("When do spring tides happen?", "tides.md"),
    ("Why are neap tides weaker?", "tides.md"),
    (
        "Which pigment absorbs light in plants?",
        "photosynthesis.md",
    ),
    (
        "Where does the oxygen released by plants come from?",
        "photosynthesis.md",
    ),
    (
        "What does the Calvin cycle do with carbon dioxide?",
        "photosynthesis.md",
    ),
    ("How can I squash my last commits together?", "git.md"),
    (
        "Why should I not rebase a branch other people pulled?",
        "git.md",
    ),
    (
        "How do I get a linear history without merge commits?",
        "git.md",
    ),
    (
        "How fast should weekly running mileage increase?",
        "marathon.md",
    ),
    ("What is tapering before a race?", "marathon.md"),
    (
        "Why eat lots of carbohydrates before a marathon?",
        "marathon.md",
    ),
    ("What is the first crack when roasting beans?", "coffee.md"),
    ("How does a dark roast taste?", "coffee.md"),
    (
        "Why let freshly roasted beans rest before brewing?",
        "coffee.md",
    ),
    ("What is the event horizon?", "black_holes.md"),
    ("How do stellar black holes form?", "black_holes.md"),
    ("What did Stephen Hawking predict?", "black_holes.md"),
    ("What should I put in a compost heap?", "composting.md"),
    ("My compost smells bad, what is wrong?", "composting.md"),
    ("Why turn the compost pile?", "composting.md"),
    (
        "What are the three steps to open a TCP connection?",
        "tcp.md",
    ),
    ("What is the TIME_WAIT state for?", "tcp.md"),
    ("How is a TCP connection closed?", "tcp.md"),
    (
        "How do I get soft blurred edges when painting?",
        "watercolor.md",
    ),
    (
        "Which paper resists buckling for watercolor?",
        "watercolor.md",
    ),
    (
        "How do watercolor painters make highlights without white paint?",
        "watercolor.md",
    ),
    ("How does a vaccine teach the immune system?", "vaccines.md"),
    ("What is herd immunity?", "vaccines.md"),
    (
        "What share of people must be immune to stop measles?",
        "vaccines.md",
    ),
    ("How often should I oil my bike chain?", "bicycle.md"),
    ("How do I know when to replace brake pads?", "bicycle.md"),
    ("How do I repair a punctured inner tube?", "bicycle.md"),
    (
        "What happens to a value when its owner goes out of scope?",
        "rust.md",
    ),
    ("How many mutable references may exist at once?", "rust.md"),
    ("What does the borrow checker prevent?", "rust.md"),
    ("When is a value copied instead of moved?", "rust.md"),
    (
        "What does the green chlorophyll do in chloroplasts?",
        "photosynthesis.md",
    ),
];

/// Troubleshooting pages that differ mainly in their identifiers (error codes, part
/// numbers): near-duplicates for an embedding model, told apart exactly by BM25.
pub(crate) const CODE_DOCS: &[(&str, &str)] = &[
    (
        "e1042.md",
        "# Controller fault E-1042\n\nThe controller shows fault E-1042 when the supply voltage drops below the safe limit for more than two seconds. Check the power adapter and the mains socket, then restart the unit.",
    ),
    (
        "e1047.md",
        "# Controller fault E-1047\n\nThe controller shows fault E-1047 when the cooling fan stops turning. Unplug the unit, remove dust from the fan grille and make sure nothing blocks the blades, then restart it.",
    ),
    (
        "e2210.md",
        "# Controller fault E-2210\n\nThe controller shows fault E-2210 when the firmware image fails its checksum during an update. Download the update again and repeat the installation; do not switch the unit off while it runs.",
    ),
    (
        "e2213.md",
        "# Controller fault E-2213\n\nThe controller shows fault E-2213 when the internal clock battery is empty, so the date resets after every restart. Replace the coin cell behind the service cover.",
    ),
    (
        "e3305.md",
        "# Controller fault E-3305\n\nThe controller shows fault E-3305 when a sensor cable is unplugged or damaged. Reseat the cable on port two and inspect it for kinks or broken insulation.",
    ),
    (
        "e3391.md",
        "# Controller fault E-3391\n\nThe controller shows fault E-3391 when the network link goes down. Check the Ethernet cable, the switch port lights and the DHCP lease on the router.",
    ),
    (
        "e4470.md",
        "# Controller fault E-4470\n\nThe controller shows fault E-4470 when the storage card is full. Delete old log files from the card or replace it with a larger one.",
    ),
    (
        "e4478.md",
        "# Controller fault E-4478\n\nThe controller shows fault E-4478 when the storage card is write-protected. Slide the lock switch on the side of the card to the unlocked position.",
    ),
    (
        "kx3310.md",
        "# Replacement part KX-3310\n\nPart KX-3310 is the front panel assembly with display and buttons. It fits every unit built after 2019 and is fixed with four screws.",
    ),
    (
        "kx3318.md",
        "# Replacement part KX-3318\n\nPart KX-3318 is the rear panel assembly with the connectors. It fits every unit built after 2019 and is fixed with six screws.",
    ),
    (
        "kx5102.md",
        "# Replacement part KX-5102\n\nPart KX-5102 is the main power supply board. Only a certified technician may fit it, because it carries mains voltage.",
    ),
    (
        "kx5160.md",
        "# Replacement part KX-5160\n\nPart KX-5160 is the spare cooling fan module with its mounting bracket. It clips into place without tools.",
    ),
];

/// Questions that name an identifier next to words about *another* page's topic (as a
/// confused user would ask): the identifier decides, which lexical search sees and meaning
/// does not.
pub(crate) const IDENTIFIER_QUESTIONS: &[(&str, &str)] = &[
    ("Is fault E-1042 caused by the cooling fan?", "e1042.md"),
    ("Does E-1047 mean the storage card is full?", "e1047.md"),
    (
        "E-2210 appeared after I unplugged the sensor cable, why?",
        "e2210.md",
    ),
    (
        "Is E-2213 a network problem with the Ethernet link?",
        "e2213.md",
    ),
    ("Can a failed firmware update cause E-3305?", "e3305.md"),
    (
        "My clock battery is new, so why do I get E-3391?",
        "e3391.md",
    ),
    (
        "Does replacing the power supply board fix E-4470?",
        "e4470.md",
    ),
    ("Could a loose Ethernet cable give E-4478?", "e4478.md"),
    ("Is KX-3310 the spare cooling fan?", "kx3310.md"),
    (
        "Does KX-3318 need a certified technician for the mains voltage?",
        "kx3318.md",
    ),
    (
        "Is KX-5102 the front display panel with buttons?",
        "kx5102.md",
    ),
    ("Does the storage card slot sit on KX-5160?", "kx5160.md"),
    ("e1042 with a write-protected card", "e1042.md"),
    (
        "troubleshooting e3391 after a dust cleaning of the fan",
        "e3391.md",
    ),
    ("kx5102 screws and display", "kx5102.md"),
];

/// Questions paraphrased with few words in common with their answer: vectors find them,
/// BM25 mostly does not.
pub(crate) const PARAPHRASED_QUESTIONS: &[(&str, &str)] = &[
    (
        "How can I stop my homemade leavening from dying?",
        "sourdough.md",
    ),
    (
        "Who is the mother of every insect in the apiary?",
        "beekeeping.md",
    ),
    ("Why do some mountains blow up?", "volcanoes.md"),
    (
        "Tips for the beginning of a game on the 64 squares?",
        "chess.md",
    ),
    (
        "Why does the ocean creep up the beach and retreat?",
        "tides.md",
    ),
    (
        "How do leaves make food from sunshine?",
        "photosynthesis.md",
    ),
    (
        "How do I tidy up my recent history before pushing?",
        "git.md",
    ),
    ("How should I prepare for a 42 km foot race?", "marathon.md"),
    (
        "What changes when I cook my espresso seeds longer?",
        "coffee.md",
    ),
    ("What swallows even light in space?", "black_holes.md"),
    (
        "How do I turn kitchen leftovers into fertiliser?",
        "composting.md",
    ),
    (
        "How do two computers agree to start talking reliably?",
        "tcp.md",
    ),
    (
        "How to get blurry soft transitions with transparent pigments?",
        "watercolor.md",
    ),
    (
        "How does a jab protect people against illness?",
        "vaccines.md",
    ),
    ("How do I look after my cycle's drivetrain?", "bicycle.md"),
    (
        "Who is responsible for freeing memory in this compiled language?",
        "rust.md",
    ),
    (
        "What happens when a giant sun dies and collapses?",
        "black_holes.md",
    ),
    ("My pile of garden waste stinks, help?", "composting.md"),
    (
        "How do honey makers get the sweet stuff out?",
        "beekeeping.md",
    ),
    ("Why does my loaf get a crunchy outside?", "sourdough.md"),
];
