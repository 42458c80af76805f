       IDENTIFICATION DIVISION.
       PROGRAM-ID. COPYUSE.
       DATA DIVISION.
       LINKAGE SECTION.
       COPY orderrec REPLACING ==:PFX:== BY ==LK-IN==
                               LEADING ==XX== BY ==LK==.
       COPY "orderrec" REPLACING ==:PFX:== BY ==LK-OUT==.
       PROCEDURE DIVISION USING LK-IN-REC LK-OUT-REC.
           GOBACK.
